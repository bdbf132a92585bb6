"""Training methods, one module per paper. ``METHODS[name](params, student, teachers, train_set)``
builds the ``Method`` (contract in ``kdlib/methods/base.py`` and ``docs/CONTRACTS.md``).
Paper modules add one line each below."""
from kdlib.methods import base, unified
from kdlib.methods import fpd, sdp
from kdlib.methods import two_stage
from kdlib.methods import mapd
from kdlib.methods import distillers, ekr

METHODS = {
    "supervised": base.build_method,
    "sdp": sdp.build_method,                    # SDP self-distillation (Eq. 1-5)
    "fpd": fpd.build_method,                    # FPD offline distillation (SDP Table 3 baseline)
    "two_stage": two_stage.build_stage1,        # TwoStage-GCN stage 1 (Eq. 1-5)
    "two_stage_gcn": two_stage.build_stage2,    # TwoStage-GCN stage 2, IGP-GCN (Eq. 6-7)
    "mapd": mapd.build_method,                  # ELPN-MAPD multi-angle pose distillation (Eq. 1-3)
    "ekr": ekr.build_method,                    # EKR cross-stage review + MFT + WA + SimCC KD (Eq. 1-8)
    "kd": distillers.builder("kd"),             # EKR Table 1: vanilla KD on SimCC (Hinton)
    "fitnet": distillers.builder("fitnet"),     # EKR Table 1: FitNet hint
    "rkd": distillers.builder("rkd"),           # EKR Table 1: relational KD
    "at": distillers.builder("at"),             # EKR Table 1: attention transfer ("AF")
    "sp": distillers.builder("sp"),             # EKR Table 1: similarity-preserving
    "reviewkd": distillers.builder("reviewkd"), # EKR Table 1: knowledge review (ABF + HCL)
    "unified": unified.build_method,            # Unified-MT multi-teacher (Eq. 6-8)
}


def build_method(name: str, params: dict, student, teachers, train_set):
    """Look ``name`` up in METHODS and build it; unknown names list the registered ones."""
    if name not in METHODS:
        raise KeyError(f"unknown method {name!r}; registered: {sorted(METHODS)}")
    return METHODS[name](dict(params), student, teachers, train_set)
