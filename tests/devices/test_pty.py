"""A serial round trip through a real socat PTY pair and pyserial, as a USB adapter would."""
import serial


def test_pty_round_trip(pty_pair):
    pair = pty_pair()
    with serial.Serial(pair.station_end, 9600, timeout=2, exclusive=True) as station, \
            serial.Serial(pair.device_end, 9600, timeout=2) as device:
        device.write(b"S S      12.34 kg\r\n")
        assert station.read_until(b"\r\n") == b"S S      12.34 kg\r\n"
        station.write(b"S\r\n")  # a SICS probe, the other way
        assert device.read_until(b"\r\n") == b"S\r\n"
