from edge.drivers.llrp.driver import LlrpDriver

__all__ = ["LlrpDriver"]
