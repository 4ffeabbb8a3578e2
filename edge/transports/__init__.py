"""Byte sources: serial ports (pyserial) and TCP sockets. The only device I/O of the edge agent."""
