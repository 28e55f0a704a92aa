"""Build-then-parse round trip over generated dispenses (Hypothesis).

The strategies generate every field a `Dispense` can carry on the wire (the CMET requires a
quantity, a performer with one id, a responsible party with role and pharmacy, and a
prescription id; those are always generated). Each generated answer must also validate
against the assembled schema: the builder never writes an invalid message.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hl7_samples import BSN, NOW, PHARMACY, make_params
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from prefetch.domain import oids
from prefetch.domain.coded import Code, CodedValue, Identifier, Quantity, QuantityRange, Timing
from prefetch.domain.dispense import (
    Dispense,
    Dosage,
    Ingredient,
    Party,
    Product,
    dispense_from_json,
)
from prefetch.errors import InvalidValueError
from prefetch.hl7v3.answer import build_batch, build_dispense_item
from prefetch.hl7v3.params import QueryRef
from prefetch.hl7v3.parse import parse_answer
from prefetch.hl7v3.schema import validate_batch
from prefetch.hl7v3.xmlparse import parse_xml

REF = QueryRef.of(make_params())
SAFE = st.characters(min_codepoint=0x20, max_codepoint=0x17F, blacklist_categories=("Cs", "Cc"))
text = st.text(SAFE, min_size=1, max_size=30).filter(lambda s: s.strip() != "")
token = st.text(st.sampled_from("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789-._"), min_size=1, max_size=20)
oid = st.builds(
    lambda first, rest: ".".join(map(str, [first, *rest])),
    st.sampled_from([1, 2]),
    st.lists(st.integers(1, 99_999), min_size=2, max_size=8),
)
null_flavor = st.sampled_from(["NI", "UNK", "MSK", "NA", "OTH", "ASKU", "NAV"])
decimals = st.decimals(
    min_value=0, max_value=100_000, places=3, allow_nan=False, allow_infinity=False
)
units = st.sampled_from(["1", "d", "mg", "ml", "g", "h", "wk", "ug"])
days = st.dates(min_value=dt.date(1990, 1, 1), max_value=dt.date(2030, 12, 31))
ts = st.builds(
    lambda d, h: d.strftime("%Y%m%d") + h, days, st.sampled_from(["", "0800", "120000", "2359"])
)

identifiers = st.one_of(
    st.builds(Identifier, root=oid, extension=st.one_of(st.none(), token)),
    st.builds(Identifier, null_flavor=null_flavor),
)
uzi_ids = st.builds(
    Identifier,
    root=st.just(oids.UZI_PERSON),
    extension=st.integers(0, 999_999_999).map(lambda n: f"{n:09d}"),
)
ura_ids = st.builds(
    Identifier,
    root=st.just(oids.URA),
    extension=st.integers(0, 99_999_999).map(lambda n: f"{n:08d}"),
)


def codes(depth: int = 2) -> st.SearchStrategy[Code]:
    translations = st.lists(codes(depth - 1), max_size=2).map(tuple) if depth else st.just(())
    return st.one_of(
        st.builds(
            Code,
            code=token,
            system=oid,
            display=st.one_of(st.none(), text),
            original_text=st.one_of(st.none(), text),
            translations=translations,
        ),
        st.builds(Code, null_flavor=null_flavor, original_text=st.one_of(st.none(), text)),
    )


plain_codes = st.builds(Code, code=token, system=oid, display=st.one_of(st.none(), text))
coded_values = st.builds(CodedValue, value=st.one_of(st.none(), decimals), code=plain_codes)
quantities = st.one_of(
    st.builds(
        Quantity,
        value=decimals,
        unit=st.one_of(st.none(), units),
        translations=st.lists(coded_values, max_size=2).map(tuple),
    ),
    st.builds(Quantity, null_flavor=null_flavor),
)
ranges = st.one_of(
    st.builds(QuantityRange, center=quantities),
    st.builds(
        QuantityRange, low=st.one_of(st.none(), quantities), high=st.one_of(st.none(), quantities)
    ),
)
operators = st.one_of(st.none(), st.sampled_from(["A", "I", "E", "P"]))
ivl = st.one_of(
    st.builds(
        Timing,
        kind=st.just("IVL"),
        low=ts,
        width=st.one_of(st.none(), quantities),
        operator=operators,
    ),
    st.builds(Timing, kind=st.just("IVL"), low=ts, high=ts, operator=operators),
    st.builds(
        Timing,
        kind=st.just("IVL"),
        width=quantities,
        high=st.one_of(st.none(), ts),
        operator=operators,
    ),
    st.builds(Timing, kind=st.just("IVL"), high=ts, operator=operators),
)
pivl = st.one_of(
    st.builds(
        Timing,
        kind=st.just("PIVL"),
        period=st.one_of(st.none(), quantities),
        phase_low=st.one_of(st.none(), ts),
        phase_width=st.one_of(st.none(), quantities),
        institution_specified=st.one_of(st.none(), st.booleans()),
        operator=operators,
    ),
    st.builds(Timing, kind=st.just("PIVL"), period=quantities, phase_center=ts, operator=operators),
)
simple_timing = st.one_of(
    st.builds(Timing, kind=st.just("TS"), low=ts, operator=operators), ivl, pivl
)
timings = st.one_of(
    simple_timing,
    st.builds(
        Timing,
        kind=st.just("SXPR"),
        operator=operators,
        components=st.lists(
            st.one_of(
                simple_timing,
                st.builds(
                    Timing,
                    kind=st.just("SXPR"),
                    operator=operators,
                    components=st.lists(simple_timing, min_size=1, max_size=2).map(tuple),
                ),
            ),
            min_size=1,
            max_size=3,
        ).map(tuple),
    ),
)


@st.composite
def dosages(draw: st.DrawFn) -> Dosage:
    n_max = draw(st.integers(0, 2))
    return Dosage(
        text=draw(st.one_of(st.none(), text)),
        status=draw(st.one_of(st.none(), st.sampled_from(["active", "completed"]))),
        timing=draw(st.lists(timings, max_size=1).map(tuple)),
        dose=draw(st.one_of(st.none(), ranges)),
        max_dose=tuple(draw(quantities) for _ in range(n_max)),
        max_dose_per=tuple(draw(quantities) for _ in range(n_max)),
        route=draw(st.one_of(st.none(), codes(1))),
        instructions=draw(st.lists(codes(0), max_size=2).map(tuple)),  # CV: no translations
        preconditions=draw(st.lists(codes(0), max_size=2).map(tuple)),
    )


@st.composite
def ingredients(draw: st.DrawFn) -> tuple[Ingredient, ...]:
    def one(active: bool) -> Ingredient:
        strength = draw(st.booleans())
        return Ingredient(
            active=active,
            code=draw(codes(1)),
            numerator=draw(quantities) if strength else None,
            denominator=draw(quantities) if strength else None,
        )

    actives = [one(True) for _ in range(draw(st.integers(0, 2)))]
    others = [one(False) for _ in range(draw(st.integers(0, 2)))]
    return tuple(actives + others)


@st.composite
def dispenses(draw: st.DrawFn) -> Dispense:
    dispensed_on = draw(st.one_of(st.none(), days))
    dispensed_time = None
    if dispensed_on is not None and draw(st.booleans()):
        dispensed_time = dispensed_on.strftime("%Y%m%d") + draw(st.sampled_from(["1200", "093015"]))
    org_ids = draw(st.lists(ura_ids, max_size=1).map(tuple))
    return Dispense(
        id=Identifier(root=draw(oid), extension=draw(st.one_of(st.none(), token))),
        status=draw(st.one_of(st.none(), st.sampled_from(["completed", "active", "aborted"]))),
        dispensed_on=dispensed_on,
        dispensed_time=dispensed_time,
        period_start=draw(st.one_of(st.none(), days)),
        period_end=draw(st.one_of(st.none(), days)),
        quantity=draw(quantities),
        expected_use=draw(st.one_of(st.none(), quantities)),
        product=Product(
            code=draw(codes()),
            description=draw(st.one_of(st.none(), text)),
            ingredients=draw(ingredients()),
            form=draw(st.one_of(st.none(), codes(1))),
        ),
        dosages=draw(st.lists(dosages(), max_size=2).map(tuple)),
        prescriber=draw(
            st.one_of(
                st.none(),
                st.builds(
                    Party,
                    ids=st.lists(st.one_of(uzi_ids, identifiers), min_size=1, max_size=3).map(
                        tuple
                    ),
                    role=st.one_of(st.none(), codes(0)),
                ),
            )
        ),
        prescription_id=draw(identifiers),
        performer=Party(
            ids=(draw(identifiers),),
            organization_ids=org_ids,
            organization_name=draw(st.one_of(st.none(), text)) if org_ids else None,
        ),
        responsible=Party(
            ids=(draw(st.one_of(uzi_ids, identifiers)),),
            role=draw(codes(1)),
            organization_ids=(draw(ura_ids),),
            organization_name=draw(st.one_of(st.none(), text)),
        ),
    )


@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)
@given(st.lists(dispenses(), min_size=1, max_size=3, unique_by=lambda d: d.key))
def test_build_then_parse_gives_the_same_dispenses(items: list[Dispense]) -> None:
    item = build_dispense_item(
        query=REF,
        source=PHARMACY,
        bsn=BSN,
        dispenses=items,
        message_id=Identifier("2.16.840.1.113883.2.4.6.6", "1"),
        receiver_application_id="4003",
        now=NOW,
    )
    data = build_batch(
        query=REF,
        items=[item],
        message_id=Identifier("2.16.840.1.113883.2.4.6.6", "2"),
        receiver_application_id="4003",
        now=NOW,
    )
    validate_batch(parse_xml(data))
    parsed = parse_answer(data, expect=REF)
    assert parsed.dispenses == tuple(items)


def test_json_keeps_a_unit_translation_without_value() -> None:
    d = Dispense(
        id=Identifier("1.2.3", "x"),
        quantity=Quantity(
            Decimal(1), translations=(CodedValue(None, Code("245", oids.GSTD_UNIT)),)
        ),
    )
    assert dispense_from_json(d.to_json()) == d


def test_cv_positions_refuse_translations() -> None:
    d = Dispense(
        id=Identifier("1.2.3", "x"),
        dosages=(
            Dosage(
                instructions=(Code("1137", oids.NHG_TABLE_25, translations=(Code("1", "1.2"),)),)
            ),
        ),
    )
    with pytest.raises(InvalidValueError):
        build_dispense_item(
            query=REF,
            source=PHARMACY,
            bsn=BSN,
            dispenses=(d,),
            message_id=Identifier("1.2", "1"),
            receiver_application_id="4003",
            now=NOW,
        )


def test_decimal_text_has_no_exponent() -> None:
    from prefetch.hl7v3.xmlbuild import format_decimal

    assert format_decimal(Decimal("1E+3")) == "1000"
    assert format_decimal(Decimal("0.000001")) == "0.000001"
