"""A toy paper-table module for the driver tests (same shape as kdlib/paper_tables/<paper>.py)."""
from kdlib.paper_tables import Claim, Row, Table, gain


TABLES = {
    "main": Table(
        title="Toy Table 1: baseline vs method", columns=["AP", "AR", "Params (M)"],
        metric_source="coco", baseline="Baseline",
        rows=[
            Row("Literature [X]", {"AP": 60.0, "AR": 65.0}, "quoted"),
            Row("Baseline", {"AP": 50.0, "AR": 55.0}, "run", {"value": 50.0, "sleep": 1.5}),
            Row("Method", {"AP": 52.0, "AR": 57.0}, "run", {"value": 52.0, "sleep": 1.5}),
            Row("Broken", {"AP": 1.0}, "run", {"value": 0.0, "fail": True}),
        ],
        claims=[Claim("Method beats Baseline", gain("Method", "Baseline", "AP")),
                Claim("Baseline beats Method", gain("Baseline", "Method", "AP")),
                Claim("Broken beats Baseline", gain("Broken", "Baseline", "AP"))]),
    "extra": Table(
        title="Toy Table 2: shares the Baseline cell", columns=["AP"],
        rows=[Row("Baseline", {"AP": 50.0}, "run", {"value": 50.0, "sleep": 1.5})]),
}
HEADLINE = "main"
