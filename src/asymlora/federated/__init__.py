"""Federated fine-tuning of adapters on Flower (``flwr``): B-only FedAvg is exact, LoRA's is not.

* :mod:`~asymlora.federated.aggregation`: the aggregation rules and ‖avg ΔW − ΔW_agg‖ (torch only);
* :mod:`~asymlora.federated.splits`: Dirichlet(α) non-IID label splits;
* :mod:`~asymlora.federated.config`: :class:`FederatedConfig` and the methods (:data:`METHODS`);
* :mod:`~asymlora.federated.local`: data shards, the adapted model, local steps, accuracy;
* :mod:`~asymlora.federated.apps`: the Flower ``ClientApp`` / ``ServerApp`` (imports ``flwr``);
* :mod:`~asymlora.federated.experiment`: every method in Flower's simulation runtime + centralised;
* :mod:`~asymlora.federated.report`: tables and the accuracy plot.

Importing this package does not import ``flwr``; only ``apps`` and ``experiment.simulate`` need it.
"""

from asymlora.federated.config import METHODS, FederatedConfig, FederatedMethod, get_method

__all__ = ["METHODS", "FederatedConfig", "FederatedMethod", "get_method"]
