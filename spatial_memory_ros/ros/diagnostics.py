"""core.health reports as diagnostic_msgs, the message rqt_robot_monitor and diagnostic_aggregator read.

Published on the absolute topic /diagnostics, as diagnostic_updater does, whatever the node's namespace: the
aggregator listens there alone. Each status is named "<node name>: <part>", diagnostic_updater's convention.
"""

from __future__ import annotations

from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

from spatial_memory_ros.core.health import HealthReport, Level

TOPIC = "/diagnostics"

_LEVELS = {Level.OK: DiagnosticStatus.OK, Level.WARN: DiagnosticStatus.WARN, Level.ERROR: DiagnosticStatus.ERROR}


def to_status(name: str, hardware_id: str, report: HealthReport) -> DiagnosticStatus:
    status = DiagnosticStatus()
    status.level = _LEVELS[report.level]
    status.name, status.message, status.hardware_id = name, report.message, hardware_id
    status.values = [KeyValue(key=k, value=v) for k, v in report.values]
    return status


def to_array(stamp: Time, statuses: list[DiagnosticStatus]) -> DiagnosticArray:
    array = DiagnosticArray()
    array.header.stamp = stamp
    array.status = statuses
    return array
