from station.web.uploads.router import router

__all__ = ["router"]
