from station.web.incidents.router import router

__all__ = ["router"]
