"""What the CLI says when it has no usable kubeconfig: which file it tried, and how to name one."""

from __future__ import annotations

__all__ = ["unusable_kubeconfig"]


def unusable_kubeconfig(kubeconfig: str | None, error: Exception) -> str:
    """``no usable kubeconfig (<file or where it looked>: <why>)`` and the option that names one.

    The kubernetes client's own words ("Invalid kube-config file. No configuration found.") do
    not say which file it read.
    """
    where = kubeconfig or "$KUBECONFIG, else ~/.kube/config"
    return f"no usable kubeconfig ({where}: {error}); name one with --kubeconfig FILE"
