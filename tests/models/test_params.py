import json

import pytest
from rram_cosim.models.errors import ConfigError
from rram_cosim.models.params import (
    LIFParams,
    MosfetSpec,
    TiaSpec,
    TileSpec,
    from_dict,
    isclose_params,
    to_dict,
)


def test_defaults_validate_and_round_trip_through_json():
    spec = TileSpec(rows=32, cols=8, tia=TiaSpec(r_f_ohm=5e3))
    back = from_dict(TileSpec, json.loads(json.dumps(to_dict(spec))))
    assert isclose_params(spec, back)
    assert back.tia.r_f_ohm == 5e3


def test_error_names_value_range_and_unit():
    with pytest.raises(ConfigError, match=r"'v_read_v' parameter of TileSpec .*\(0, 0.5\] V.*0.8"):
        TileSpec(v_read_v=0.8)


def test_unknown_key_lists_valid_names():
    with pytest.raises(ConfigError, match="Unknown parameter.*'rowz'.*Valid names"):
        from_dict(TileSpec, {"rowz": 3})


def test_custom_card_needs_lib_and_model():
    with pytest.raises(ConfigError, match="lib_path"):
        MosfetSpec(card="custom")
    with pytest.raises(ConfigError, match="one of"):
        MosfetSpec(card="bsim9")


def test_integer_and_level_checks():
    with pytest.raises(ConfigError, match="integer"):
        TileSpec(rows=3.5)
    with pytest.raises(ConfigError, match="fractions of the read voltage"):
        LIFParams(in_level=1.5)


def test_full_scale_sets_feedback_resistor():
    spec = TileSpec(rows=64, v_read_v=0.2, g_full_scale_us=30.0)
    # full-scale current lands exactly on the ADC full scale
    assert spec.i_full_scale_ua == pytest.approx(64 * 0.2 * 30.0)
    assert spec.r_f_ohm * spec.i_full_scale_ua * 1e-6 == pytest.approx(spec.adc.v_full_scale_v)
