"""EPC hex -> pure identity URI (epcpy), on the TDS test vectors collected in examples.tsv."""

from __future__ import annotations

import csv

import pytest

from edge.errors import FrameError
from edge.protocols.epc import normalize_epc, pure_identity_uri
from tests.conftest import shared_testdata

SUPPORTED_PREFIXES = ("sgtin-", "sscc-", "grai-")


def _rows() -> list[dict[str, str]]:
    with shared_testdata("epc", "examples.tsv").open(newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def test_every_supported_row_decodes_to_its_uri() -> None:
    rows = [r for r in _rows() if r["scheme"].startswith(SUPPORTED_PREFIXES)]
    assert len(rows) >= 20  # sgtin-96/198, sscc-96, grai-96/170
    for row in rows:
        assert pure_identity_uri(row["hex"]) == row["pure_identity_uri"], row
        assert pure_identity_uri(row["hex"].lower()) == row["pure_identity_uri"], row


def test_other_schemes_give_none_never_raise() -> None:
    rows = [r for r in _rows() if not r["scheme"].startswith(SUPPORTED_PREFIXES)]
    assert {r["scheme"].split("-")[0] for r in rows} >= {"giai", "gid", "sgln", "gsrn", "adi", "usdod"}
    for row in rows:
        assert pure_identity_uri(row["hex"]) is None, row


@pytest.mark.parametrize(
    "epc",
    [
        "1FB41F712AC9C37AB79D618173188324001A",  # no GS1 header
        "3614257BF7194E4000001A85",  # SGTIN-198 header, only 96 bits: epcpy refuses
        "000000000000000000000000",
    ],
)
def test_unknown_or_undecodable_is_none(epc: str) -> None:
    assert pure_identity_uri(epc) is None


def test_word_padded_reads_still_decode() -> None:
    assert pure_identity_uri("3034257BF7194E4000001A850000") == "urn:epc:id:sgtin:0614141.812345.6789"


@pytest.mark.parametrize(
    "epc", ["", "XYZ", "3034257BF7194E4000001A8G", "3034257BF7194E4000001A8", "30" * 11, "30" * 63]
)
def test_bad_epc(epc: str) -> None:
    with pytest.raises(FrameError) as info:
        pure_identity_uri(epc)
    assert info.value.reason == "bad_epc"


def test_normalize_epc_is_the_contract_rule() -> None:
    assert normalize_epc(" 3005fb63ac1f3841ec880467 ") == "3005FB63AC1F3841EC880467"
    assert normalize_epc("AB" * 62) == "AB" * 62  # 496 bits
    for bad in ("AB" * 25, "AB" * 11, "AB" * 63, "G" * 24):  # 200 bits is bytes, not 16-bit words
        with pytest.raises(FrameError) as info:
            normalize_epc(bad, device="gate-1")
        assert info.value.reason == "bad_epc" and info.value.device == "gate-1"
