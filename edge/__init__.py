"""Edge agent: reads gate RFID readers, cold-room sensors and vehicle GNSS on a gateway box and
publishes contract messages over MQTT, buffering on disk so nothing is lost when the network drops.

    transports/  bytes from a serial port or TCP socket (the only I/O besides the queue and MQTT)
    protocols/   bytes in, typed readings out (NMEA, gpsd JSON, Modbus register maps, LLRP, serial RFID)
    drivers/     one folder per input: a transport plus a protocol for one device, with sample config
    queue.py     durable on-disk queue; seq assigned here
    publisher.py queue -> MQTT, a reading leaves the queue only after the broker's PUBACK
    agent.py     `bondwatch edge --config FILE`
"""
