from station.web.setup.router import router

__all__ = ["router"]
