"""ROS parameters of the controller node ↔ ``ControllerParams``.

Every field of ``ControllerParams`` is a ROS parameter of the same name,
declared from ``jacobian_ik.params.PARAMETER_SPECS`` (description with unit,
range where bounded, read-only unless the field is tunable).  The node adds the
structural parameters in ``NODE_PARAMETERS`` (robot, chain, output, metrics
rate), all read-only.  ``PROCESS_PARAMETERS`` (executor, CPU affinity,
real-time priority, memory locking) belong to the process that runs a node;
``jacobian_ik.node.process.run_node`` declares them on every node it runs.

Start-up: ``declare_all`` declares everything and returns the validated
``ControllerParams`` and ``NodeSettings``; any bad value raises
``ConfigurationError`` naming the parameter, the value and the valid set.
Live: ``ParameterGate`` is the ``add_on_set_parameters_callback`` callback; it
validates a change with ``ControllerParams.replace`` and hands it to the
controller, or refuses it with the reason (the running value stays).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from rcl_interfaces.msg import (
    FloatingPointRange,
    IntegerRange,
    ParameterDescriptor,
    SetParametersResult,
)
from rclpy.exceptions import (
    InvalidParameterTypeException,
    InvalidParameterValueException,
    ParameterUninitializedException,
)
from rclpy.node import Node
from rclpy.parameter import Parameter

from jacobian_ik.errors import ConfigurationError, JacobianIkError
from jacobian_ik.node.outputs import DEFAULT_TOPICS, OUTPUT_MODES, output_topic_parameter
from jacobian_ik.params import PARAMETER_SPECS, ControllerParams, ParameterSpec


@dataclass(frozen=True)
class NodeParameter:
    """A structural (read-only) parameter of the node, not of the controller core.

    ``ros_type`` is needed only when the default does not tell the type (an
    empty list).
    """

    default: object
    description: str
    choices: tuple[str, ...] = ()
    ros_type: Parameter.Type | None = None


NODE_PARAMETERS: dict[str, NodeParameter] = {
    "robot_description": NodeParameter(
        "", "URDF of the robot as XML text (the ROS convention); takes precedence over "
            "urdf_path"),
    "urdf_path": NodeParameter("", "path of a URDF file, used when robot_description is empty"),
    "base_link": NodeParameter("", "link at the root of the controlled chain; targets and "
                                   "twists are expressed in its frame"),
    "tip_link": NodeParameter("", "link at the end of the controlled chain (the tool point)"),
    "output": NodeParameter("velocity", "command output: joint velocities "
                                        "(Float64MultiArray), joint positions "
                                        "(Float64MultiArray) or a one-point JointTrajectory",
                            OUTPUT_MODES),
    **{output_topic_parameter(mode): NodeParameter(topic, f"topic of the '{mode}' output")
       for mode, topic in DEFAULT_TOPICS.items()},
    "scene_file": NodeParameter(
        "", "YAML file of static obstacles in the base frame (jacobian_ik.collision.scene); "
            "empty = none; ~/scene (MarkerArray) edits the scene while running"),
    "metrics_rate": NodeParameter(
        100.0, "rate of ~/jacobian_metrics [Hz], a whole fraction of control_rate (rounded); "
               "0 or >= control_rate = every control cycle"),
}

#: Executors a node can spin on (see jacobian_ik.node.executors).
EXECUTOR_CHOICES = ("events", "single")

#: Options of the process that runs a node, declared by ``run_node`` on both nodes.
PROCESS_PARAMETERS: dict[str, NodeParameter] = {
    "executor": NodeParameter(
        "events", "rclpy executor: 'events' (rclpy.experimental.EventsExecutor; falls back "
                  "to 'single' where unavailable) or 'single' (SingleThreadedExecutor)",
        EXECUTOR_CHOICES),
    "cpu_affinity": NodeParameter(
        [], "CPU cores the process may run on, e.g. [1]; empty = any core",
        ros_type=Parameter.Type.INTEGER_ARRAY),
    "realtime_priority": NodeParameter(
        0, "SCHED_FIFO priority of the process, 1..99 (needs CAP_SYS_NICE or an rtprio "
           "limit); 0 = normal scheduling"),
    "lock_memory": NodeParameter(
        False, "lock the process's memory in RAM (mlockall), so no page fault reaches the "
               "disk; needs CAP_IPC_LOCK or an unlimited memlock limit"),
}

#: Highest SCHED_FIFO priority Linux accepts.
REALTIME_PRIORITY_MAX = 99


@dataclass(frozen=True)
class NodeSettings:
    """Values of ``NODE_PARAMETERS`` after validation."""

    robot_description: str
    urdf_path: str
    base_link: str
    tip_link: str
    output: str
    output_topic: str
    metrics_rate: float     # [Hz]; 0 = every control cycle
    scene_file: str = ""    # obstacles file; "" = none

    def metrics_decimation(self, control_rate: float) -> int:
        """Publish ``~/jacobian_metrics`` every this many control cycles (>= 1)."""
        if self.metrics_rate <= 0.0 or self.metrics_rate >= control_rate:
            return 1
        return max(1, round(control_rate / self.metrics_rate))

    @property
    def urdf_source(self) -> str:
        """The URDF XML text or file path to build the robot from."""
        return self.robot_description if self.robot_description.strip() else self.urdf_path


_FLOAT_MAX = sys.float_info.max


#: ROS parameter type of each ``ParameterSpec.kind``.
_KIND_TYPES = {
    "float": Parameter.Type.DOUBLE,
    "str": Parameter.Type.STRING,
    "float_array": Parameter.Type.DOUBLE_ARRAY,
    "int": Parameter.Type.INTEGER,
    "bool": Parameter.Type.BOOL,
}


def _ros_type(default: object) -> Parameter.Type:
    if isinstance(default, NodeParameter):
        return default.ros_type or _ros_type(default.default)
    if isinstance(default, bool):
        return Parameter.Type.BOOL
    if isinstance(default, int):
        return Parameter.Type.INTEGER
    if isinstance(default, float):
        return Parameter.Type.DOUBLE
    if isinstance(default, str):
        return Parameter.Type.STRING
    if isinstance(default, (tuple, list)):
        return Parameter.Type.DOUBLE_ARRAY
    raise TypeError(f"no ROS parameter type for default {default!r}")


_TYPE_WORDS = {
    Parameter.Type.BOOL: "a boolean (true/false)",
    Parameter.Type.INTEGER: "an integer",
    Parameter.Type.DOUBLE: "a floating-point number (write 5.0, not 5)",
    Parameter.Type.STRING: "a string",
    Parameter.Type.DOUBLE_ARRAY: "a list of floating-point numbers (write [1.0, 2.0])",
    Parameter.Type.INTEGER_ARRAY: "a list of integers (write [0, 1])",
}


def _spec_text(spec: ParameterSpec | NodeParameter) -> str:
    text = spec.description
    unit = getattr(spec, "unit", "")
    if unit:
        text += f" (unit: {unit})"
    if getattr(spec, "choices", ()):
        text += "; one of: " + ", ".join(spec.choices)
    if not getattr(spec, "tunable", False):
        text += " (read-only: set at start-up)"
    return text


def controller_descriptor(name: str, spec: ParameterSpec,
                          ros_type: Parameter.Type) -> ParameterDescriptor:
    """The ROS descriptor of controller field ``name`` from its ``ParameterSpec``."""
    descriptor = ParameterDescriptor()
    descriptor.name = name
    descriptor.type = ros_type.value
    descriptor.description = _spec_text(spec)
    descriptor.read_only = not bool(getattr(spec, "tunable", False))
    low = getattr(spec, "minimum", None)
    high = getattr(spec, "maximum", None)
    constraints = []
    if low is not None:
        constraints.append(f"minimum {low}")
    if high is not None:
        constraints.append(f"maximum {high}")
    if getattr(spec, "choices", ()):
        constraints.append("one of: " + ", ".join(spec.choices))
    descriptor.additional_constraints = "; ".join(constraints)
    if low is None and high is None:
        return descriptor
    if ros_type == Parameter.Type.DOUBLE:
        descriptor.floating_point_range = [FloatingPointRange(
            from_value=float(low) if low is not None else -_FLOAT_MAX,
            to_value=float(high) if high is not None else _FLOAT_MAX, step=0.0)]
    elif ros_type == Parameter.Type.INTEGER:
        descriptor.integer_range = [IntegerRange(
            from_value=int(low) if low is not None else -(2 ** 63),
            to_value=int(high) if high is not None else 2 ** 63 - 1, step=0)]
    return descriptor


def node_descriptor(name: str, spec: NodeParameter) -> ParameterDescriptor:
    descriptor = ParameterDescriptor()
    descriptor.name = name
    descriptor.type = _ros_type(spec).value
    descriptor.description = spec.description
    if spec.choices:
        descriptor.additional_constraints = "one of: " + ", ".join(spec.choices)
    descriptor.read_only = True
    return descriptor


def _declare(node: Node, name: str, default: Any, descriptor: ParameterDescriptor,
             ros_type: Parameter.Type) -> None:
    """Declare one parameter; a type or range error becomes ConfigurationError."""
    try:
        if ros_type in _ARRAY_TYPES and len(default) == 0:
            # An empty list has no inferable type: declare by type; unset = empty.
            node.declare_parameter(name, ros_type, descriptor)
        else:
            node.declare_parameter(name, list(default) if isinstance(default, tuple)
                                   else default, descriptor)
    except InvalidParameterTypeException as exc:
        raise ConfigurationError(
            f"parameter '{name}' must be {_TYPE_WORDS.get(ros_type, ros_type.name)}: "
            f"{exc}") from None
    except InvalidParameterValueException as exc:
        ranges = list(descriptor.floating_point_range) + list(descriptor.integer_range)
        if ranges:
            raise ConfigurationError(
                f"parameter '{name}' is outside its valid range [{ranges[0].from_value}, "
                f"{ranges[0].to_value}] ({exc})") from None
        raise ConfigurationError(f"parameter '{name}': {exc}") from None


_ARRAY_TYPES = (Parameter.Type.DOUBLE_ARRAY, Parameter.Type.INTEGER_ARRAY)


def _value(node: Node, name: str, ros_type: Parameter.Type) -> Any:
    try:
        value = node.get_parameter(name).value
    except ParameterUninitializedException:
        return ()
    if ros_type == Parameter.Type.DOUBLE_ARRAY:
        return tuple(float(v) for v in value)
    if ros_type == Parameter.Type.INTEGER_ARRAY:
        return tuple(int(v) for v in value)
    return value


def declare_controller_parameters(node: Node) -> ControllerParams:
    """Declare every ``ControllerParams`` field and return the validated values.

    Raises ``ConfigurationError`` for a wrong type, an out-of-range value or a
    combination ``ControllerParams`` rejects.
    """
    values = {}
    for name, spec in PARAMETER_SPECS.items():
        ros_type = _KIND_TYPES.get(spec.kind) or _ros_type(spec.default)
        _declare(node, name, spec.default, controller_descriptor(name, spec, ros_type),
                 ros_type)
        values[name] = _value(node, name, ros_type)
    return ControllerParams.from_dict(values)


def declare_node_parameters(node: Node) -> NodeSettings:
    """Declare ``NODE_PARAMETERS`` and return them checked.

    Raises ``ConfigurationError`` when no robot is given, a link is empty, the
    output mode is unknown or metrics_rate < 0.
    """
    values = _declare_all(node, NODE_PARAMETERS)
    if not values["robot_description"].strip() and not values["urdf_path"].strip():
        raise ConfigurationError(
            "no robot: set parameter 'robot_description' (URDF XML) or 'urdf_path' (a file)")
    for link in ("base_link", "tip_link"):
        if not values[link].strip():
            raise ConfigurationError(f"parameter '{link}' is empty; name a link of the URDF")
    if values["output"] not in OUTPUT_MODES:
        raise ConfigurationError(
            f"parameter 'output' is '{values['output']}'; valid values: "
            f"{', '.join(OUTPUT_MODES)}")
    if not values["metrics_rate"] >= 0.0:
        raise ConfigurationError(
            f"parameter 'metrics_rate' is {values['metrics_rate']}; it must be >= 0 [Hz] "
            "(0 = every control cycle)")
    return NodeSettings(
        robot_description=values["robot_description"], urdf_path=values["urdf_path"],
        base_link=values["base_link"], tip_link=values["tip_link"], output=values["output"],
        output_topic=values[output_topic_parameter(values["output"])],
        metrics_rate=float(values["metrics_rate"]), scene_file=values["scene_file"])


def _declare_all(node: Node, specs: dict[str, NodeParameter]) -> dict[str, Any]:
    values = {}
    for name, spec in specs.items():
        ros_type = _ros_type(spec)
        _declare(node, name, spec.default, node_descriptor(name, spec), ros_type)
        values[name] = _value(node, name, ros_type)
    return values


@dataclass(frozen=True)
class ProcessSettings:
    """Values of ``PROCESS_PARAMETERS`` after validation."""

    executor: str = "events"
    cpu_affinity: tuple[int, ...] = ()         # core numbers; () = any core
    realtime_priority: int = 0                 # SCHED_FIFO 1..99; 0 = off
    lock_memory: bool = False


def declare_process_parameters(node: Node) -> ProcessSettings:
    """Declare ``PROCESS_PARAMETERS`` on ``node`` and return them checked.

    Raises ``ConfigurationError`` for an unknown executor, a negative core
    number or a priority outside 0..99.  Whether the OS grants the options is
    decided when they are applied (``jacobian_ik.node.realtime``).
    """
    values = _declare_all(node, PROCESS_PARAMETERS)
    if values["executor"] not in EXECUTOR_CHOICES:
        raise ConfigurationError(
            f"parameter 'executor' is '{values['executor']}'; valid values: "
            f"{', '.join(EXECUTOR_CHOICES)}")
    cores = values["cpu_affinity"]
    if any(core < 0 for core in cores):
        raise ConfigurationError(
            f"parameter 'cpu_affinity' is {list(cores)}; core numbers are >= 0")
    priority = values["realtime_priority"]
    if not 0 <= priority <= REALTIME_PRIORITY_MAX:
        raise ConfigurationError(
            f"parameter 'realtime_priority' is {priority}; valid values: 0 (off) or "
            f"1..{REALTIME_PRIORITY_MAX} (SCHED_FIFO)")
    return ProcessSettings(executor=values["executor"], cpu_affinity=tuple(cores),
                           realtime_priority=int(priority),
                           lock_memory=bool(values["lock_memory"]))


def _as_field_value(parameter: Parameter) -> Any:
    value = parameter.value
    if parameter.type_ == Parameter.Type.DOUBLE_ARRAY:
        return tuple(float(v) for v in value)
    return value


class ParameterGate:
    """``add_on_set_parameters_callback`` callback: accept a live change only if
    ``ControllerParams.replace`` validates it and the controller takes it.

    ``apply(new_params)`` is called with the validated ``ControllerParams``; it
    raises ``ConfigurationError`` to refuse (e.g. a read-only field).
    """

    def __init__(self, get_params: Callable[[], ControllerParams],
                 apply: Callable[[ControllerParams], None]) -> None:
        self._get_params = get_params
        self._apply = apply

    def __call__(self, parameters: Iterable[Parameter]) -> SetParametersResult:
        changes = {}
        for parameter in parameters:
            if parameter.name in PARAMETER_SPECS:
                changes[parameter.name] = _as_field_value(parameter)
            elif parameter.name in NODE_PARAMETERS:
                return SetParametersResult(
                    successful=False,
                    reason=f"parameter '{parameter.name}' is read-only (set at start-up)")
        if not changes:
            return SetParametersResult(successful=True)
        try:
            new_params = self._get_params().replace(**changes)
            self._apply(new_params)
        except JacobianIkError as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        except (TypeError, ValueError) as exc:
            return SetParametersResult(successful=False, reason=f"invalid value: {exc}")
        return SetParametersResult(successful=True)

