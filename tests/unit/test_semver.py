import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.errors import InvalidVersion
from core.model import SemVer

# The precedence example from the SemVer 2.0.0 specification, section 11.
SPEC_ORDER = [
    "1.0.0-alpha",
    "1.0.0-alpha.1",
    "1.0.0-alpha.beta",
    "1.0.0-beta",
    "1.0.0-beta.2",
    "1.0.0-beta.11",
    "1.0.0-rc.1",
    "1.0.0",
    "1.0.1",
    "1.1.0",
    "2.0.0",
    "10.0.0",
]


def test_spec_precedence_order():
    parsed = [SemVer.parse(v) for v in SPEC_ORDER]
    assert sorted(reversed(parsed)) == parsed
    for lower, higher in itertools.pairwise(parsed):
        assert lower < higher, (lower, higher)


def test_numeric_prerelease_compares_as_number_not_text():
    assert SemVer.parse("1.0.0-rc.2") < SemVer.parse("1.0.0-rc.10")


def test_build_metadata_ignored_for_precedence_but_kept_in_text():
    a, b = SemVer.parse("1.2.3+build.5"), SemVer.parse("1.2.3+other")
    assert a == b and hash(a) == hash(b)
    assert str(a) == "1.2.3+build.5"


def test_leading_v_accepted():
    assert SemVer.parse("v2.0.1") == SemVer.parse("2.0.1")


@pytest.mark.parametrize(
    "bad", ["1.2", "1.2.3.4", "01.2.3", "1.2.3-", "1.2.3-01", "", "a.b.c", "1.2.3+"]
)
def test_bad_versions_raise_with_actionable_message(bad):
    with pytest.raises(InvalidVersion) as info:
        SemVer.parse(bad)
    assert "MAJOR.MINOR.PATCH" in str(info.value)
    assert repr(bad) in str(info.value)


def test_non_text_version_rejected():
    with pytest.raises(InvalidVersion):
        SemVer.parse(3)


ident = st.from_regex(r"(0|[1-9][0-9]{0,3}|[a-z][a-z0-9-]{0,5})", fullmatch=True)
versions = st.builds(
    SemVer,
    st.integers(0, 50),
    st.integers(0, 50),
    st.integers(0, 50),
    st.lists(ident, max_size=3).map(tuple),
)


@given(versions)
def test_round_trip_through_text(v):
    assert SemVer.parse(str(v)) == v
    assert str(SemVer.parse(str(v))) == str(v)


@given(versions, versions, versions)
def test_ordering_is_total_and_transitive(a, b, c):
    assert (a < b) + (a == b) + (a > b) == 1
    if a <= b and b <= c:
        assert a <= c


@given(versions)
def test_release_ranks_above_its_prereleases(v):
    release = SemVer(v.major, v.minor, v.patch)
    if v.prerelease:
        assert v < release
