"""EPC binary encodings (GS1 EPC Tag Data Standard) as read off a tag -> pure identity URIs. No I/O.

An EPC as the readers report it is the EPC bank's content in hex, header byte first::

    ┌────────┬────────┬───────────┬──────────────────────┬──────────────────────┐
    │ header │ filter │ partition │ company prefix        │ item ref / serial ...│   SGTIN-96
    │ 8 bits │ 3 bits │ 3 bits    │ 20..40 bits           │ 24..4 + 38 bits      │
    └────────┴────────┴───────────┴──────────────────────┴──────────────────────┘
    header 0x30 SGTIN-96, 0x36 SGTIN-198, 0x31 SSCC-96, 0x33 GRAI-96, 0x37 GRAI-170, ...

    3034257BF7194E4000001A85  ->  urn:epc:id:sgtin:0614141.812345.6789

The decoding is epcpy's (``hex_to_tag_encodable(...).epc_uri``). Only the schemes the platform
uses get a URI: SGTIN (trade items), SSCC (logistic units), GRAI (returnable assets such as
pallets and cages). Any other header, or content epcpy refuses for one of those schemes, gives
``None``: an EPC does not have to be a GS1 identity to be a valid tag read.

:func:`normalize_epc` is the one check every protocol applies to an EPC before it becomes a reading:
hex digits, 96..496 bits in whole 16-bit words (the contract's rule); anything else raises
``FrameError("bad_epc")``.
"""

from __future__ import annotations

import re

from epcpy.epc_schemes.grai import GRAI
from epcpy.epc_schemes.sgtin import SGTIN
from epcpy.epc_schemes.sscc import SSCC
from epcpy.utils.common import ConvertException
from epcpy.utils.parsers import hex_to_tag_encodable

from edge.errors import FrameError

MIN_BITS = 96
MAX_BITS = 496
SUPPORTED = (SGTIN, SSCC, GRAI)
_HEX = re.compile(r"[0-9A-Fa-f]+")


def normalize_epc(epc: str, *, device: str | None = None) -> str:
    """The EPC as the contract carries it: upper-case hex, 96..496 bits in whole 16-bit words.

    Tags store their EPC in 16-bit words, so readers always report whole words (an SGTIN-198 is
    read as 208 bits). Anything else raises ``FrameError("bad_epc")``.
    """
    text = _hex(epc, device)
    if len(text) % 4:
        raise _bad(epc, f"EPC of {len(text) * 4} bits is not whole 16-bit words", device)
    return text


def pure_identity_uri(epc: str) -> str | None:
    """``urn:epc:id:...`` for an SGTIN, SSCC or GRAI encoding; ``None`` for any other scheme.

    Takes hex of 96..496 bits in whole bytes (so the TDS test vectors of 198-bit and 170-bit
    schemes, written as 200 and 176 bits, decode too); raises ``FrameError("bad_epc")`` for
    anything that is not.
    """
    hex_epc = _hex(epc, None)
    try:
        tag = hex_to_tag_encodable(hex_epc)
    except (ConvertException, ValueError, KeyError, IndexError):
        return None
    if not isinstance(tag, SUPPORTED):
        return None
    uri = tag.epc_uri
    return uri if isinstance(uri, str) else None


def _hex(epc: str, device: str | None) -> str:
    text = epc.strip()
    if not _HEX.fullmatch(text):
        raise _bad(epc, f"EPC {epc!r} is not hex", device)
    bits = len(text) * 4
    if len(text) % 2 or not MIN_BITS <= bits <= MAX_BITS:
        raise _bad(epc, f"EPC of {bits} bits: expected {MIN_BITS}..{MAX_BITS} bits", device)
    return text.upper()


def _bad(epc: str, message: str, device: str | None) -> FrameError:
    return FrameError("bad_epc", message, raw=epc.encode("ascii", "replace"), device=device)
