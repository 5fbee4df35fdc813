"""ROS parameters of the controller node ↔ ``ControllerParams``.

Every field of ``ControllerParams`` is a ROS parameter of the same name,
declared from ``jacobian_ik.params.PARAMETER_SPECS`` (description with unit,
range where bounded, read-only unless the field is tunable).  The node adds the
structural parameters in ``NODE_PARAMETERS`` (robot, chain, output), all
read-only.

Start-up: ``declare_all`` declares everything and returns the validated
``ControllerParams`` and ``NodeSettings``; any bad value raises
``ConfigurationError`` naming the parameter, the value and the valid set.
Live: ``ParameterGate`` is the ``add_on_set_parameters_callback`` callback; it
validates a change with ``ControllerParams.replace`` and hands it to the
controller, or refuses it with the reason (the running value stays).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

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
from rclpy.parameter import Parameter

from jacobian_ik.errors import ConfigurationError, JacobianIkError
from jacobian_ik.node.outputs import DEFAULT_TOPICS, OUTPUT_MODES, output_topic_parameter
from jacobian_ik.params import PARAMETER_SPECS, ControllerParams


@dataclass(frozen=True)
class NodeParameter:
    """A structural (read-only) parameter of the node, not of the controller core."""

    default: object
    description: str
    choices: tuple[str, ...] = ()


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
    "metrics_decimation": NodeParameter(
        1, "publish ~/jacobian_metrics every this many control cycles (1 = every cycle)"),
}


@dataclass(frozen=True)
class NodeSettings:
    """Values of ``NODE_PARAMETERS`` after validation."""

    robot_description: str
    urdf_path: str
    base_link: str
    tip_link: str
    output: str
    output_topic: str
    metrics_decimation: int

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


def _ros_type(default) -> Parameter.Type:
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
}


def _spec_text(spec) -> str:
    text = spec.description
    unit = getattr(spec, "unit", "")
    if unit:
        text += f" (unit: {unit})"
    if getattr(spec, "choices", ()):
        text += "; one of: " + ", ".join(spec.choices)
    if not getattr(spec, "tunable", False):
        text += " (read-only: set at start-up)"
    return text


def controller_descriptor(name: str, spec, ros_type: Parameter.Type) -> ParameterDescriptor:
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
    descriptor.type = _ros_type(spec.default).value
    descriptor.description = spec.description
    if spec.choices:
        descriptor.additional_constraints = "one of: " + ", ".join(spec.choices)
    descriptor.read_only = True
    return descriptor


def _declare(node, name: str, default, descriptor: ParameterDescriptor, ros_type):
    """Declare one parameter; a type or range error becomes ConfigurationError."""
    try:
        if ros_type == Parameter.Type.DOUBLE_ARRAY and len(default) == 0:
            # An empty list has no inferable type: declare by type; unset = empty.
            node.declare_parameter(name, ros_type, descriptor)
        else:
            node.declare_parameter(name, list(default) if isinstance(default, tuple)
                                   else default, descriptor)
    except InvalidParameterTypeException as exc:
        raise ConfigurationError(
            f"parameter '{name}' must be {_TYPE_WORDS.get(ros_type, ros_type.name)}: "
            f"{exc}", parameter=name) from None
    except InvalidParameterValueException as exc:
        ranges = list(descriptor.floating_point_range) + list(descriptor.integer_range)
        if ranges:
            raise ConfigurationError(
                f"parameter '{name}' is outside its valid range [{ranges[0].from_value}, "
                f"{ranges[0].to_value}] ({exc})", parameter=name,
                valid_range=(ranges[0].from_value, ranges[0].to_value)) from None
        raise ConfigurationError(f"parameter '{name}': {exc}", parameter=name) from None


def _value(node, name: str, ros_type):
    try:
        value = node.get_parameter(name).value
    except ParameterUninitializedException:
        return ()
    if ros_type == Parameter.Type.DOUBLE_ARRAY:
        return tuple(float(v) for v in value)
    return value


def declare_controller_parameters(node) -> ControllerParams:
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


def declare_node_parameters(node) -> NodeSettings:
    """Declare ``NODE_PARAMETERS`` and return them checked.

    Raises ``ConfigurationError`` when no robot is given, a link is empty, the
    output mode is unknown or metrics_decimation < 1.
    """
    values = {}
    for name, spec in NODE_PARAMETERS.items():
        ros_type = _ros_type(spec.default)
        _declare(node, name, spec.default, node_descriptor(name, spec), ros_type)
        values[name] = _value(node, name, ros_type)
    if not values["robot_description"].strip() and not values["urdf_path"].strip():
        raise ConfigurationError(
            "no robot: set parameter 'robot_description' (URDF XML) or 'urdf_path' (a file)",
            parameter="robot_description")
    for link in ("base_link", "tip_link"):
        if not values[link].strip():
            raise ConfigurationError(f"parameter '{link}' is empty; name a link of the URDF",
                                     parameter=link, value=values[link])
    if values["output"] not in OUTPUT_MODES:
        raise ConfigurationError(
            f"parameter 'output' is '{values['output']}'; valid values: "
            f"{', '.join(OUTPUT_MODES)}",
            parameter="output", value=values["output"], choices=OUTPUT_MODES)
    if values["metrics_decimation"] < 1:
        raise ConfigurationError(
            f"parameter 'metrics_decimation' is {values['metrics_decimation']}; it must be >= 1",
            parameter="metrics_decimation", value=values["metrics_decimation"],
            valid_range=(1, None))
    return NodeSettings(
        robot_description=values["robot_description"], urdf_path=values["urdf_path"],
        base_link=values["base_link"], tip_link=values["tip_link"], output=values["output"],
        output_topic=values[output_topic_parameter(values["output"])],
        metrics_decimation=int(values["metrics_decimation"]))


def _as_field_value(parameter: Parameter):
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

    def __init__(self, get_params, apply):
        self._get_params = get_params
        self._apply = apply

    def __call__(self, parameters) -> SetParametersResult:
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

