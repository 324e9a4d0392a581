"""Pipeline parameters and expressions: values known only when a pipeline execution runs.

``{"Get": "Parameters.X"}`` reads a parameter, ``{"Get": "Steps.S.<path>"}`` a property of an earlier
step, ``Std:Join`` joins values, ``Std:JsonGet`` reads a value from a step's property file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

#: Any JSON value, or a pipeline expression that evaluates to one.
Json = Any
ParameterType = Literal["String", "Integer", "Boolean", "Float"]
EXECUTION_ID: dict[str, str] = {"Get": "Execution.PipelineExecutionId"}


@dataclass(frozen=True)
class Parameter:
    """A pipeline parameter; ``.ref`` is the expression that reads it at run time.

    ``default=None`` declares a parameter without a ``DefaultValue`` (as the SageMaker SDK renders
    ``default_value=None``): every execution must pass it, so a value that only the person starting the
    run knows (a model package ARN, the execution whose data to score) is never silently defaulted.
    """

    name: str
    type: ParameterType
    default: str | int | float | bool | None
    #: The only values an execution may pass (SageMaker refuses any other when the execution starts).
    enum_values: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        expected: dict[str, tuple[type, ...]] = {
            "String": (str,),
            "Integer": (int,),
            "Float": (float, int),
            "Boolean": (bool,),
        }
        if self.default is None:
            if self.enum_values:
                raise ValueError(
                    f"parameter {self.name}: got no default with enum values {list(self.enum_values)}; "
                    "allowed: enum values only with a default among them"
                )
            return
        ok = isinstance(self.default, expected[self.type])
        if self.type in ("Integer", "Float") and isinstance(self.default, bool):
            ok = False
        if not ok:
            raise ValueError(
                f"parameter {self.name}: got default {self.default!r}; allowed: a {self.type} value"
            )
        if self.enum_values and (self.type != "String" or self.default not in self.enum_values):
            raise ValueError(
                f"parameter {self.name}: got default {self.default!r} with enum values "
                f"{list(self.enum_values)}; allowed: a String parameter whose default is one of them"
            )

    @property
    def required(self) -> bool:
        """True if every execution must pass a value (no default)."""
        return self.default is None

    @property
    def ref(self) -> dict[str, str]:
        return param(self.name)

    def to_json(self) -> dict[str, Json]:
        spec: dict[str, Json] = {"Name": self.name, "Type": self.type}
        if self.default is not None:
            spec["DefaultValue"] = self.default
        if self.enum_values:
            spec["EnumValues"] = list(self.enum_values)
        return spec


def param(name: str) -> dict[str, str]:
    return {"Get": f"Parameters.{name}"}


def step_property(step: str, path: str) -> dict[str, str]:
    """A property of an earlier step, e.g. ``step_property("Train", "ModelArtifacts.S3ModelArtifacts")``."""
    return {"Get": f"Steps.{step}.{path}"}


def join(on: str, *values: Json) -> dict[str, Json]:
    return {"Std:Join": {"On": on, "Values": list(values)}}


def json_get(step: str, property_file: str, path: str) -> dict[str, Json]:
    return {
        "Std:JsonGet": {
            "PropertyFile": {"Get": f"Steps.{step}.PropertyFiles.{property_file}"},
            "Path": path,
        }
    }
