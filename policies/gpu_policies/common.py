"""The names the policies share, gathered from the modules named after each part, for code outside the
package that imported them from here before the split (the policies themselves import from the parts):

- ``tokens``: type tokens and where each pod-bearing kind keeps its pod template;
- ``access``: safe property access (``get``, ``seq``, ``UNKNOWN``) and how a value is shown;
- ``resource``: the resource being checked (``ResourceView``) and the one message shape (``violation``);
- ``pods``: the pod-spec walker;
- ``outcome``: what an evaluation found, the "can't run during preview" signal, notes between policies;
- ``config``: config parsing and its once-per-run error report;
- ``guard``: ``resource_policy``/``stack_policy``, which make every evaluation a validator that cannot fail a
  preview.
"""
from __future__ import annotations

from .access import (  # noqa: F401
    UNKNOWN, UNKNOWN_SENTINELS, get, get_in, is_mapping, key_path, keys, seq, show,
)
from .config import (  # noqa: F401
    NAMED_REASON_FIELDS, ConfigError, ConfigReader, config_error_message, named_reasons_schema,
    reset_reported_config_errors,
)
from .guard import internal_error_message, resource_policy, stack_policy  # noqa: F401
from .outcome import NeedsKnownValues, Outcome, not_applicable, publish_note, take_note  # noqa: F401
from .pods import CONTAINER_LISTS, ContainerRef, PodSpecRef, pod_spec  # noqa: F401
from .resource import ResourceView, violation  # noqa: F401
from .tokens import (  # noqa: F401
    CLUSTER_POLICY, CLUSTER_ROLE, CLUSTER_ROLE_BINDING, CRON_JOB, DAEMON_SET, DEPLOYMENT, HELM_CHART_V4, HELM_RELEASE,
    JOB, NAMESPACE, NVIDIA_DRIVER, POD, POD_PATHS, POD_TEMPLATE, REPLICA_SET, REPLICATION_CONTROLLER, RESOURCE_QUOTA,
    ROLE, ROLE_BINDING, STATEFUL_SET, WORKLOAD_TYPES, TypeToken, parse_token,
)
