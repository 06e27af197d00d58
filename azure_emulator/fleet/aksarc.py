"""AKS Arc `provisionedClusterInstances/default` bodies (ARM only, not in ARG), shaped like
azure-examples/GetProvisionedClusterInstance.json (API 2024-01-01)."""

from __future__ import annotations

from typing import Any

from azure_emulator.fleet.clusters import MISSING
from azure_emulator.fleet.containers import SubPlan
from azure_emulator.fleet.context import GenContext
from azure_emulator.fleet.network import SubNetwork
from azure_emulator.fleet.rand import Weighted, cover

INSTANCE_TYPE = "Microsoft.HybridContainerService/provisionedClusterInstances"
INSTANCE_SUFFIX = "/providers/Microsoft.HybridContainerService/provisionedClusterInstances/default"

_POLICY_COVER = ("calico", "flannel", "cilium", MISSING)
_POLICY = Weighted({"calico": 75, "flannel": 10, "cilium": 7, MISSING: 8})
_RANGES_COVER = ("10.0.0.0/8,192.168.10.0/24", "0.0.0.0/0", MISSING)
_RANGES = Weighted({"10.0.0.0/8,192.168.10.0/24": 40, "172.16.0.0/12": 20, "0.0.0.0/0": 10, MISSING: 30})
_STATE_COVER = ("Succeeded", "Failed", "Updating")
_STATE = Weighted({"Succeeded": 92, "Failed": 4, "Updating": 2, "Creating": 1, "Upgrading": 1})
_SSH_KEY = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAACAQCY......."


def instance_body(ctx: GenContext, plan: SubPlan, net: SubNetwork, cluster: dict[str, Any]) -> dict[str, Any]:
    rng, index = ctx.rng, ctx.next("pci")
    policy = cover(_POLICY_COVER, index, _POLICY, rng)
    ranges = cover(_RANGES_COVER, index, _RANGES, rng)
    state = cover(_STATE_COVER, index, _STATE, rng)
    pool = net.logical_networks
    subnets = [pool[rng.randrange(len(pool))]]
    if len(pool) > 1 and rng.random() < 0.1:
        subnets.append(pool[(pool.index(subnets[0]) + 1) % len(pool)])
    version = cluster["properties"]["kubernetesVersion"]
    host = f"192.168.{rng.randrange(256)}.{rng.randrange(2, 250)}"
    properties: dict[str, Any] = {
        "provisioningState": state,
        "controlPlane": {
            "count": rng.choice((1, 3)),
            "vmSize": "Standard_A4_v2",
            "controlPlaneEndpoint": {"hostIP": host},
        },
        "kubernetesVersion": version,
        "agentPoolProfiles": [
            {
                "name": "nodepool1",
                "count": max(1, cluster["properties"]["totalNodeCount"]),
                "vmSize": "Standard_A4_v2",
                "osType": "Linux",
                "osSKU": "CBLMariner",
            }
        ],
        "linuxProfile": {"ssh": {"publicKeys": [{"keyData": _SSH_KEY}]}},
        "cloudProviderProfile": {"infraNetworkProfile": {"vnetSubnetIds": subnets}},
        "licenseProfile": {"azureHybridBenefit": cluster["properties"]["azureHybridBenefit"]},
        "storageProfile": {"smbCsiDriver": {"enabled": True}, "nfsCsiDriver": {"enabled": True}},
        "status": {
            "controlPlaneStatus": [
                {
                    "name": "control-plane",
                    "phase": "provisioned" if state == "Succeeded" else "failed" if state == "Failed" else "provisioning",
                    "ready": state == "Succeeded",
                }
            ]
        },
    }
    if policy != MISSING:
        properties["networkProfile"] = {
            "networkPolicy": policy,
            "podCidr": f"10.{rng.choice((244, 245, 100))}.0.0/16",
            "loadBalancerProfile": {"count": rng.randrange(3)},
        }
    if ranges != MISSING:
        properties["clusterVMAccessProfile"] = {"authorizedIPRanges": ranges}
    return {
        "id": cluster["id"] + INSTANCE_SUFFIX,
        "name": cluster["name"],  # quirk of the official example: the cluster name, not "default"
        "type": INSTANCE_TYPE,
        "extendedLocation": {"type": "CustomLocation", "name": plan.custom_location},
        "properties": properties,
    }
