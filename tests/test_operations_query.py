"""ExecQuery and OpenQueryInstances: a table of WQL and CQL queries and what they select."""
from __future__ import annotations

import pytest
import pywbem
from hypothesis import given, settings, strategies as st

from provider.operations.query import like_regex, parse
from tests.operations_support import HOST, NS, World, error_code, ids

# b1: alpha, Count 5, Enabled, Tags [x, y], Ratio 0.5, Started 2024-01-01
# b2: beta, Count 10, not Enabled, Ratio 2.0
# s1 (TST_Sub): gamma, Count 7, Enabled, Extra 'more', Buddy -> o1
# s2 (TST_Sub): no ElementName, no Count, Extra "o'brien"
QUERIES = [
    ("WQL", "SELECT * FROM TST_Base", ["b1", "b2", "s1", "s2"]),
    ("WQL", "select * from tst_base where Count = 5", ["b1"]),
    ("WQL", "SELECT * FROM TST_Base WHERE Count <> 5", ["b2", "s1"]),
    ("WQL", "SELECT * FROM TST_Base WHERE Count != 5", ["b2", "s1"]),
    ("WQL", "SELECT * FROM TST_Base WHERE Count < 7", ["b1"]),
    ("WQL", "SELECT * FROM TST_Base WHERE Count <= 7", ["b1", "s1"]),
    ("WQL", "SELECT * FROM TST_Base WHERE Count > 5", ["b2", "s1"]),
    ("WQL", "SELECT * FROM TST_Base WHERE Count >= 10", ["b2"]),
    ("WQL", "SELECT * FROM TST_Base WHERE 7 = Count", ["s1"]),
    ("WQL", "SELECT * FROM TST_Base WHERE Ratio > 0.75", ["b2"]),
    ("WQL", "SELECT * FROM TST_Base WHERE Ratio = 5e-1", ["b1"]),
    ("WQL", "SELECT * FROM TST_Base WHERE Count > -1 AND Count < 0x6", ["b1"]),
    ("WQL", "SELECT * FROM TST_Base WHERE ElementName = 'alpha'", ["b1"]),
    ("WQL", 'SELECT * FROM TST_Base WHERE ElementName = "beta"', ["b2"]),
    ("WQL", "SELECT * FROM TST_Base WHERE ElementName < 'b'", ["b1"]),
    ("WQL", "SELECT * FROM TST_Sub WHERE Extra = 'o''brien'", ["s2"]),
    ("WQL", "SELECT * FROM TST_Base WHERE Enabled = TRUE", ["b1", "s1"]),
    ("WQL", "SELECT * FROM TST_Base WHERE Enabled <> true", ["b2"]),
    ("WQL", "SELECT * FROM TST_Base WHERE ElementName IS NULL", ["s2"]),
    ("WQL", "SELECT * FROM TST_Base WHERE ElementName IS NOT NULL", ["b1", "b2", "s1"]),
    ("WQL", "SELECT * FROM TST_Base WHERE Count = NULL", []),
    ("WQL", "SELECT * FROM TST_Base WHERE NOT Count = 5", ["b2", "s1"]),
    ("WQL", "SELECT * FROM TST_Base WHERE NOT (Count = 5 OR Count = 10)", ["s1"]),
    ("WQL", "SELECT * FROM TST_Base WHERE Count = 5 OR Enabled = FALSE AND Count = 10",
     ["b1", "b2"]),
    ("WQL", "SELECT * FROM TST_Base WHERE (Count = 5 OR Enabled = FALSE) AND Count = 10",
     ["b2"]),
    ("WQL", "SELECT * FROM TST_Base WHERE Count > 1 OR ElementName = 'x'", ["b1", "b2", "s1"]),
    ("WQL", "SELECT * FROM TST_Base WHERE ElementName LIKE 'a%'", ["b1"]),
    ("WQL", "SELECT * FROM TST_Base WHERE ElementName LIKE '_eta'", ["b2"]),
    ("WQL", "SELECT * FROM TST_Base WHERE ElementName LIKE '[ab]%'", ["b1", "b2"]),
    ("WQL", "SELECT * FROM TST_Base WHERE ElementName LIKE '[^ab]%'", ["s1"]),
    ("WQL", "SELECT * FROM TST_Base WHERE ElementName NOT LIKE '%a'", []),
    ("WQL", "SELECT * FROM TST_Base WHERE ElementName NOT LIKE 'g%'", ["b1", "b2"]),
    ("WQL", "SELECT * FROM TST_Base WHERE Started = '20240101120000.000000+000'", ["b1"]),
    ("WQL", "SELECT * FROM TST_Base WHERE Started < '20250101000000.000000+000'", ["b1"]),
    ("WQL", "SELECT * FROM TST_Base b WHERE b ISA TST_Sub", ["s1", "s2"]),
    ("WQL", "SELECT * FROM TST_Base WHERE TST_Base ISA 'TST_Base'", ["b1", "b2", "s1", "s2"]),
    ("WQL", "SELECT * FROM TST_Base WHERE Buddy ISA TST_Other", ["s1"]),
    ("DMTF:CQL", "SELECT * FROM TST_Base WHERE ElementName LIKE 'a.*'", ["b1"]),
    ("DMTF:CQL", "SELECT * FROM TST_Base WHERE ElementName LIKE '.eta'", ["b2"]),
    ("DMTF:CQL", "SELECT * FROM TST_Base WHERE ElementName LIKE '[a-c].*a'", ["b1", "b2"]),
    ("DMTF:CQL", "SELECT * FROM TST_Base WHERE ElementName LIKE 'alph\\.'", []),
    ("DMTF:CQL", "SELECT * FROM TST_Base WHERE ElementName LIKE '%'", []),
    ("DMTF:CQL", "SELECT * FROM TST_Base AS t WHERE t.Count = 7 AND t ISA TST_Sub", ["s1"]),
    ("CIM:CQL", "SELECT * FROM TST_Other WHERE Level < 0", ["o1"]),
]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return World(tmp_path_factory.mktemp("query"))


@pytest.mark.parametrize("language,query,expected", QUERIES)
def test_query_selects(world, language, query, expected):
    result = world.op("ExecQuery", QueryLanguage=language, Query=query)
    assert ids(result) == expected
    assert all(i.path.namespace == NS and i.path.host == HOST for i in result)


def test_projection_keeps_the_select_list(world):
    result = world.op("ExecQuery", QueryLanguage="WQL",
                      Query="SELECT ElementName, count FROM TST_Base WHERE Enabled = TRUE")
    assert ids(result) == ["b1", "s1"]
    assert all(set(i.properties) == {"ElementName", "Count"} for i in result)
    cql = world.op("ExecQuery", QueryLanguage="DMTF:CQL",
                   Query="SELECT t.Extra FROM TST_Sub t WHERE t.Count = 7")
    assert [set(i.properties) for i in cql] == [{"Extra"}]
    star = world.op("ExecQuery", QueryLanguage="DMTF:CQL",
                    Query="SELECT TST_Sub.* FROM TST_Sub WHERE Extra = 'more'")
    assert "Extra" in star[0].properties and "Count" in star[0].properties


BAD_QUERIES = [
    "",
    "SELECT",
    "SELECT * FROM",
    "SELECT * TST_Base",
    "DELETE FROM TST_Base",
    "SELECT * FROM TST_Base, TST_Other",
    "SELECT * FROM TST_Nope",
    "SELECT Nope FROM TST_Base",
    "SELECT * FROM TST_Base WHERE Nope = 1",
    "SELECT * FROM TST_Base WHERE Count = 'five'",
    "SELECT * FROM TST_Base WHERE ElementName = 5",
    "SELECT * FROM TST_Base WHERE Enabled < TRUE",
    "SELECT * FROM TST_Base WHERE Tags = 'x'",
    "SELECT * FROM TST_Base WHERE Count LIKE '5'",
    "SELECT * FROM TST_Base WHERE ElementName LIKE 'a",
    "SELECT * FROM TST_Base WHERE ElementName LIKE '[ab'",
    "SELECT * FROM TST_Base WHERE (Count = 5",
    "SELECT * FROM TST_Base WHERE Count = 5)",
    "SELECT * FROM TST_Base WHERE Count = 5 AND",
    "SELECT * FROM TST_Base WHERE Count ~ 5",
    "SELECT * FROM TST_Base WHERE Started = 'yesterday'",
    "SELECT * FROM TST_Base WHERE Count ISA TST_Sub",
    "SELECT * FROM TST_Base b WHERE b ISA TST_Nope",
    "SELECT * FROM TST_Base WHERE x.Count = 5",
    "SELECT * FROM TST_Base WHERE Count = 12abc",
    "SELECT * FROM TST_Base WHERE Count IS 5",
]


@pytest.mark.parametrize("query", BAD_QUERIES)
def test_bad_queries_are_invalid(world, query):
    assert error_code(world.op, "ExecQuery", QueryLanguage="WQL", Query=query) == \
        pywbem.CIM_ERR_INVALID_QUERY


def test_bad_cql_like_pattern(world):
    assert error_code(world.op, "ExecQuery", QueryLanguage="DMTF:CQL",
                      Query="SELECT * FROM TST_Base WHERE ElementName LIKE '*a'") == \
        pywbem.CIM_ERR_INVALID_QUERY


def test_unknown_query_language(world):
    assert error_code(world.op, "ExecQuery", QueryLanguage="SQL-92",
                      Query="SELECT * FROM TST_Base") == \
        pywbem.CIM_ERR_QUERY_LANGUAGE_NOT_SUPPORTED
    assert error_code(world.op, "ExecQuery", Query="SELECT * FROM TST_Base") == \
        pywbem.CIM_ERR_INVALID_PARAMETER


def test_query_asks_providers_only_for_needed_properties(world):
    world.reset_calls()
    world.op("ExecQuery", QueryLanguage="WQL",
             Query="SELECT ElementName FROM TST_Base WHERE Count > 1")
    ctxs = [c for n, c in world.base.calls.contexts if n == "enumerate"]
    assert ctxs and all(c.property_list == {"elementname", "count"} for c in ctxs)


def test_open_query_instances_pulls_with_result_class(world):
    result = world.op("OpenQueryInstances", FilterQueryLanguage="DMTF:CQL",
                      FilterQuery="SELECT ElementName FROM TST_Base WHERE Count >= 5",
                      ReturnQueryResultClass=True, MaxObjectCount=2)
    assert len(result.objects) == 2 and not result.end_of_sequence
    assert set(result.query_result_class.properties) == {"ElementName"}
    rest = world.op("PullInstances", EnumerationContext=result.context, MaxObjectCount=10)
    assert rest.end_of_sequence and rest.context is None
    got = sorted(i["ElementName"] for i in result.objects + rest.objects)
    assert got == ["alpha", "beta", "gamma"]
    assert error_code(world.op, "OpenQueryInstances", FilterQueryLanguage="DMTF:FQL",
                      FilterQuery="Count = 5") == pywbem.CIM_ERR_QUERY_LANGUAGE_NOT_SUPPORTED


@pytest.mark.parametrize("pattern,language,text,match", [
    ("a%c", "WQL", "abbbc", True),
    ("a%c", "WQL", "abbbd", False),
    ("a_c", "WQL", "abc", True),
    ("a_c", "WQL", "abbc", False),
    ("a.c", "WQL", "a.c", True),
    ("a.c", "WQL", "abc", False),
    ("a.c", "DMTF:CQL", "abc", True),
    ("ab*c", "DMTF:CQL", "ac", True),
    ("ab*c", "DMTF:CQL", "abbbc", True),
    ("a\\*", "DMTF:CQL", "a*", True),
    ("a%", "DMTF:CQL", "abc", False),
    ("[0-9]+", "WQL", "5+", True),
    ("(x)", "WQL", "(x)", True),
])
def test_like_patterns(pattern, language, text, match):
    assert bool(like_regex(pattern, language).fullmatch(text)) is match


def test_parser_builds_the_tree():
    st = parse("SELECT a, b FROM C x WHERE NOT (a = 1 OR b IS NOT NULL) AND x ISA D", "WQL")
    assert [s.name for s in st.selects] == ["a", "b"]
    assert st.classname == "C" and st.alias == "x"
    assert type(st.where).__name__ == "And"
    assert type(st.where.items[0]).__name__ == "Not"


WORDS = st.sampled_from(["SELECT", "*", "FROM", "TST_Base", "WHERE", "Count", "=", "<>", "5",
                         "'a'", "AND", "OR", "NOT", "(", ")", "IS", "NULL", "ISA", "LIKE",
                         "ElementName", ",", ".", "TRUE", "-", "0x1F", "1e3", "\"x\\\"\""])


@settings(max_examples=150, deadline=None)
@given(st.one_of(st.text(max_size=60), st.lists(WORDS, max_size=14).map(" ".join)))
def test_any_text_parses_or_is_an_invalid_query(world, text):
    try:
        result = world.op("ExecQuery", QueryLanguage="WQL", Query=text)
    except pywbem.CIMError as exc:
        assert exc.status_code in (pywbem.CIM_ERR_INVALID_QUERY,
                                   pywbem.CIM_ERR_INVALID_PARAMETER)
    else:
        assert isinstance(result, list)
