"""Wire protocols of the field devices: bytes (or text lines) in, typed readings out, no I/O.

Each protocol module keeps framing (splitting a byte stream into frames) apart from decoding (one
frame into readings). Framers take an ``on_error`` callback and count what they drop in
``rejected``; decoders raise :class:`edge.errors.FrameError` with a short stable ``reason``.

    _lines.py        line framer shared by the text protocols
    modbus_map.py    Modbus register maps of cold-room sensors -> Temperature
    nmea.py          NMEA 0183 (RMC, GGA, VTG, GLL, GSA; GP/GL/GA/GB/BD/GN) and $PBWEV -> Position
    gpsd.py          gpsd JSON (TPV, SKY) -> Position
    rfid_serial.py   BondWatch ASCII line protocol of simple UHF readers -> TagRead
    llrp.py          LLRP over TCP, RO_ACCESS_REPORT -> TagRead (decoded by sllurp)
    epc.py           EPC hex -> pure identity URI (SGTIN, SSCC, GRAI; via epcpy)
"""
