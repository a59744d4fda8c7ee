from litestar.types import ControllerRouterHandler

route_handlers: list[ControllerRouterHandler] = []
