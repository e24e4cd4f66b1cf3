"""Which regions the emulator reports as enabled (ec2 DescribeRegions), as for an account
that has only those: every run of setup, status or teardown reads each enabled region
for left-overs, and for a test not about regions one other region stands for all.

moto's server runs in the test's own process (in a thread), so patching moto there
answers the CLI's runs too. A process that starts its own emulator (`loginwatch demo`)
is run through this module instead:

    python -m tests.support.regions us-east-1,eu-west-1 PATH/TO/loginwatch demo

runs the installed console script as it is, with its emulator reporting those regions.
"""

from __future__ import annotations

import runpy
import sys
from collections.abc import Iterable
from typing import Any

from moto.ec2.models.availability_zones_and_regions import Region, RegionsAndZonesBackend

# As moto reports them: every region of the partition, opt-in ones not opted in.
AS_MOTO_REPORTS = tuple(RegionsAndZonesBackend.regions)


def enabled_only(regions: Iterable[str]) -> list[Any]:
    """moto's region list with only ``regions`` enabled, every other one not opted in."""
    enabled = set(regions)
    return [
        Region(r.name, r.endpoint, r.opt_in_status if r.name in enabled else "not-opted-in")
        for r in AS_MOTO_REPORTS
    ]


if __name__ == "__main__":
    regions, script, *args = sys.argv[1:]
    RegionsAndZonesBackend.regions = enabled_only(regions.split(","))
    sys.argv = [script, *args]
    runpy.run_path(script, run_name="__main__")
