from station.web.sing.router import router

__all__ = ["router"]
