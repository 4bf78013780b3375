from station.web.precheck.router import router

__all__ = ["router"]
