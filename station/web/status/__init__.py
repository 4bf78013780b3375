from station.web.status.router import router

__all__ = ["router"]
