from station.web.pe.router import router

__all__ = ["router"]
