from station.web.rehearsal.router import router

__all__ = ["router"]
