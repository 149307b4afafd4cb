"""What every resolver receives as ``info.context``: the service and per-request state."""

from __future__ import annotations

from dataclasses import dataclass, field

import strawberry

from idgraph.api.loaders import Loaders
from idgraph.api.metrics import Metrics
from idgraph.config import ApiSettings
from idgraph.service import IdentityGraph

ANONYMOUS = "anonymous"


@dataclass
class Context:
    graph: IdentityGraph
    metrics: Metrics
    actor: str = ANONYMOUS
    loaders: Loaders = field(init=False)

    def __post_init__(self) -> None:
        self.loaders = Loaders(self.graph.store)

    @property
    def settings(self) -> ApiSettings:
        return self.graph.settings.api


Info = strawberry.Info[Context, None]
