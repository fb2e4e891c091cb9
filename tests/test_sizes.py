"""Sizes (-r, -R, -x ram_*, hpvmdevmgmt -S) and entitlements (-e, -E): agent/sizes.py."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.errors import AgentError
from agent.guest import Entitlement
from agent.sizes import (
    MAX_SIZE_MB, SizeError, format_entitlement, format_mb, format_memory, parse_cycles,
    parse_entitlement, parse_percent, parse_size,
)


@pytest.mark.parametrize("text,mb", [
    ("3G", 3072), ("2G", 2048), ("4GB", 4096), ("2048M", 2048), ("512", 512), ("512MB", 512),
    ("1g", 1024), ("4gb", 4096), ("4Gb", 4096), ("64m", 64), ("1024mb", 1024),
    ("2 GB", 2048), (" 6G ", 6144), ("007M", 7), ("2048G", 2048 * 1024),
])
def test_guide_sizes(text, mb):
    assert parse_size(text) == mb


@pytest.mark.parametrize("text,words", [
    ("0", "must be greater than zero"),
    ("0G", "must be greater than zero"),
    ("-1", "expected a whole number"),
    ("-2G", "expected a whole number"),
    ("2.5G", "expected a whole number"),
    ("2T", "expected a whole number"),
    ("2K", "expected a whole number"),
    ("G", "expected a whole number"),
    ("", "expected a whole number"),
    ("two", "expected a whole number"),
    ("2G2", "expected a whole number"),
    ("0x10", "expected a whole number"),
    ("2049G", "must not exceed 2048 GB"),
    ("99999999999999999999999999999999G", "must not exceed 2048 GB"),
    ("9" * 5000, "must not exceed 2048 GB"),
])
def test_bad_sizes_give_one_clear_line(text, words):
    with pytest.raises(SizeError) as info:
        parse_size(text, what="memory size", command="hpvmcreate")
    assert info.value.kind == "invalid"
    assert len(info.value.lines) == 1
    line = info.value.lines[0]
    assert line.startswith(f"hpvmcreate: Invalid memory size '{text}': ")
    assert words in line


def test_size_maximum_is_adjustable():
    assert parse_size("64G", maximum_mb=64 * 1024) == 65536
    with pytest.raises(SizeError, match="must not exceed 64 GB"):
        parse_size("65G", maximum_mb=64 * 1024)
    with pytest.raises(SizeError, match="must not exceed 1000 MB"):
        parse_size("1001", maximum_mb=1000)


@pytest.mark.parametrize("mb,text", [
    (512, "512 MB"), (1024, "1 GB"), (2048, "2 GB"), (4096, "4 GB"), (65536, "64 GB"),
    (64, "64 MB"), (32, "32 MB"), (1536, "1536 MB"), (2039, "2039 MB"), (0, "0 MB"),
])
def test_format_memory_as_hpvmstatus_shows_it(mb, text):
    assert format_memory(mb) == text


def test_format_mb_is_always_megabytes():
    assert format_mb(1024) == "1024 MB"
    assert format_mb(2039) == "2039 MB"


@settings(max_examples=300, deadline=None)
@given(st.integers(1, MAX_SIZE_MB))
def test_formatted_memory_parses_back(mb):
    shown = format_memory(mb)
    assert parse_size(shown) == mb
    assert parse_size(shown.replace(" ", "")) == mb


@pytest.mark.parametrize("given_,percent", [
    ("20", 20.0), ("50", 50.0), ("10", 10.0), ("100", 100.0), ("12.5", 12.5), ("5", 5.0),
    ("33%", 33.0), (20, 20.0), (7.5, 7.5),
])
def test_percent_entitlement(given_, percent):
    assert parse_entitlement(percent=given_) == Entitlement(percent=percent, mhz=None)
    assert parse_percent(given_) == percent


@pytest.mark.parametrize("bad", ["101", "100.1", "-5", "ten", "", "5,5", "1e2", "%",
                                 "4", "0", "4.9"])
def test_bad_percent(bad):
    with pytest.raises(SizeError) as info:
        parse_entitlement(percent=bad, command="hpvmmodify")
    assert len(info.value.lines) == 1
    assert info.value.lines[0].startswith(f"hpvmmodify: Invalid entitlement '{bad}': ")


@pytest.mark.parametrize("given_,mhz", [
    ("1400", 1400), ("1400M", 1400), ("1400m", 1400), ("140MHz", 140), ("1G", 1000),
    ("1.4G", 1400), ("2GHz", 2000), ("1.25g", 1250), (500, 500), ("0.001G", 1),
])
def test_cycles_entitlement_bare_number_is_mhz(given_, mhz):
    assert parse_entitlement(cycles=given_) == Entitlement(percent=None, mhz=mhz)
    assert parse_cycles(given_) == mhz


@pytest.mark.parametrize("bad,words", [
    ("0", "greater than zero"), ("0G", "greater than zero"), ("-100M", "expected CPU cycles"),
    ("1.5M", "whole number of MHz"), ("1.0001G", "whole number of MHz"),
    ("100K", "expected CPU cycles"), ("fast", "expected CPU cycles"), ("", "expected CPU cycles"),
    ("1001G", "must not exceed 1000000 MHz"), ("9" * 400, "must not exceed 1000000 MHz"),
])
def test_bad_cycles(bad, words):
    with pytest.raises(SizeError) as info:
        parse_entitlement(cycles=bad)
    assert len(info.value.lines) == 1
    assert words in info.value.lines[0]


def test_e_and_E_exclude_each_other_and_neither_is_the_default():
    with pytest.raises(AgentError) as info:
        parse_entitlement(percent="10", cycles="100M", command="hpvmcreate")
    assert info.value.lines == ["hpvmcreate: Options -e and -E are mutually exclusive"]
    assert parse_entitlement() == Entitlement(percent=10.0, mhz=None)


def test_format_entitlement():
    assert format_entitlement(Entitlement()) == "10.0%"
    assert format_entitlement(parse_entitlement(percent="12.5")) == "12.5%"
    assert format_entitlement(parse_entitlement(cycles="1.4G")) == "1400MHz"
