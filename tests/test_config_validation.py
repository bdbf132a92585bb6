"""Bad configs fail when they are built, naming the field (not after an epoch of training)."""
import pytest

from kdlib.experiment import ExperimentConfig, train_config
from kdlib.profiles import scaled_milestones
from kdlib.train.trainer import TrainConfig


@pytest.mark.parametrize("field, value", [("epochs", 0), ("epochs", -3), ("batch_size", 0),
                                          ("head", "heatmpa"), ("seed", -1)])
def test_experiment_config_rejects(field, value):
    with pytest.raises(ValueError, match=f"ExperimentConfig.{field}"):
        ExperimentConfig(profile="smoke", **{field: value})


@pytest.mark.parametrize("field, value", [("epochs", 0), ("val_every", 0), ("batch_size", 0),
                                          ("lr", 0.0), ("max_steps_per_epoch", 0)])
def test_train_config_rejects(field, value):
    with pytest.raises(ValueError, match=f"TrainConfig.{field}"):
        TrainConfig(**{field: value})


def test_profile_overrides_are_validated_too():
    cfg = ExperimentConfig(profile="smoke", profile_overrides={"val_every": 0})
    with pytest.raises(ValueError, match="val_every"):
        train_config(cfg, cfg.resolved_profile())


@pytest.mark.parametrize('knob', ['epochs', 'lr', 'lr_milestones', 'batch_size'])
def test_a_training_knob_has_one_place(knob):
    """`train={'epochs': N}` used to win over `epochs=` without rescaling the lr milestones."""
    with pytest.raises(ValueError, match=knob):
        ExperimentConfig(train={knob: 1})
    cfg = ExperimentConfig(profile='quick', epochs=8)
    assert cfg.resolved_profile()['lr_milestones'] == scaled_milestones(8)


# ----------------------------------------------------------------------------- method parameters
PARAMS = {'supervised': ('kdlib.methods.base', 'Params', 'Supervised'),
          'fpd': ('kdlib.methods.fpd', 'Params', 'FPD'),
          'sdp': ('kdlib.methods.sdp', 'Params', 'SDP'),
          'unified': ('kdlib.methods.unified', 'Params', 'UnifiedMultiTeacher'),
          'mapd': ('kdlib.methods.mapd', 'Params', None),
          'ekr': ('kdlib.methods.ekr', 'Params', None),
          'two_stage': ('kdlib.methods.two_stage', 'Stage1Params', None),
          'two_stage_gcn': ('kdlib.methods.two_stage', 'Stage2Params', None),
          'kd': ('kdlib.methods.distillers', 'KDParams', 'VanillaKD'),
          'fitnet': ('kdlib.methods.distillers', 'FitNetParams', None),
          'rkd': ('kdlib.methods.distillers', 'RKDParams', 'RKD'),
          'at': ('kdlib.methods.distillers', 'ATParams', None),
          'sp': ('kdlib.methods.distillers', 'SPParams', 'SimilarityPreserving'),
          'reviewkd': ('kdlib.methods.distillers', 'ReviewKDParams', None)}


@pytest.mark.parametrize('method', sorted(PARAMS))
def test_method_params_have_one_place(method):
    """One Params dataclass per method: a misspelt name is named with its nearest valid one before
    anything is built, and a method class with its own signature takes its defaults from Params.
    Every registered method has one."""
    import importlib
    import inspect
    from dataclasses import fields

    from kdlib.methods import METHODS, build_method
    assert set(METHODS) == set(PARAMS)
    module_name, params_name, class_name = PARAMS[method]
    module = importlib.import_module(module_name)
    params = getattr(module, params_name)
    first = fields(params)[0].name
    typo = first[:-1] + ('x' if first[-1] != 'x' else 'y')
    with pytest.raises(ValueError, match=rf"unknown .*parameters \['{typo}'\] \('{typo}': did you mean '{first}'\?\)"):
        build_method(method, {typo: 1}, None, {}, None)
    if class_name:
        signature = inspect.signature(getattr(module, class_name)).parameters
        for f in fields(params):
            if f.name in signature:
                assert signature[f.name].default == f.default, (method, f.name)
