"""What the app builds once in its lifespan and routes reach through `api.deps`."""

from __future__ import annotations

from dataclasses import dataclass

from temporalio.client import Client

from api.auth import Authenticator
from api.metrics import ApiMetrics
from invites.auth0 import Auth0Management
from invites.creation import Clock, Creator, wall_clock
from invites.db.store import Store
from invites.settings import Settings
from invites.tokens import TokenSigner


@dataclass
class Services:
    settings: Settings
    temporal: Client
    store: Store
    auth0: Auth0Management
    auth: Authenticator
    signer: TokenSigner
    metrics: ApiMetrics
    clock: Clock = wall_clock

    @property
    def creator(self) -> Creator:
        return Creator(self.settings, self.temporal, self.store, self.auth0.roles, self.clock)
