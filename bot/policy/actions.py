"""Names the policy may key remediation roles by: an action, or a risk level.

Kept free of imports so the policy can validate its keys without loading the actions.
"""

ACTION_NAMES = (
    "kubernetes.restart",
    "kubernetes.scale",
    "kubernetes.rollback",
    "kubernetes.delete_pod",
    "postgres.terminate_idle_in_transaction",
    "postgres.terminate_idle",
    "postgres.terminate_long_queries",
    "postgres.terminate_backend",
    "redis.set_maxmemory_policy",
    "ecs.set_desired_count",
    "ecs.force_new_deployment",
    "autoscaling.set_desired_capacity",
)
RISK_LEVELS = ("low", "medium", "high")
# Pods one kubernetes.delete_pod may name (a crash loop wider than this is one to roll back).
# A /diagnose button may name fewer: as many as its value carries (findings.PARAMS_MAX).
MAX_PODS = 25
