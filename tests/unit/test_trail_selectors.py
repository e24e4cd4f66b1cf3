"""Which CloudTrail event selectors record ConsoleLogin (a write management event)."""

from __future__ import annotations

import pytest

from loginwatch.resources.trail import records_sign_ins


@pytest.mark.parametrize(
    ("selectors", "advanced", "records"),
    [
        (None, None, True),
        ([{"ReadWriteType": "All", "IncludeManagementEvents": True}], None, True),
        ([{"ReadWriteType": "WriteOnly", "IncludeManagementEvents": True}], None, True),
        ([{"ReadWriteType": "ReadOnly", "IncludeManagementEvents": True}], None, False),
        ([{"ReadWriteType": "All", "IncludeManagementEvents": False}], None, False),
        ([], None, False),
        (None, [{"FieldSelectors": [{"Field": "eventCategory", "Equals": ["Management"]}]}], True),
        (None, [{"FieldSelectors": [{"Field": "eventCategory", "Equals": ["Data"]}]}], False),
        (None, [{"FieldSelectors": [{"Field": "eventCategory", "Equals": ["Management"]},
                                    {"Field": "readOnly", "Equals": ["true"]}]}], False),
        (None, [{"FieldSelectors": [{"Field": "eventCategory", "Equals": ["Management"]},
                                    {"Field": "eventSource", "NotEquals": ["signin.amazonaws.com"]}]}], False),
        (None, [{"FieldSelectors": [{"Field": "eventCategory", "Equals": ["Management"]},
                                    {"Field": "eventSource", "NotEquals": ["kms.amazonaws.com"]}]}], True),
    ],
)  # fmt: skip
def test_records_sign_ins(selectors: list | None, advanced: list | None, records: bool) -> None:
    assert records_sign_ins(selectors, advanced) is records
