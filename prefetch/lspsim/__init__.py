"""The LSP simulator: synthetic pharmacies behind a real SOAP 1.1 / mutual-TLS server.

Public API::

    World.generate(seed, patients, *, reference_date=None) -> World
    world.patients / world.pharmacies / world.add_patient(bsn, registrations)
    world.dispenses_for(bsn, since=None) -> list[Dispense]
    World.save(path) / World.load(path)
    load_profile(name_or_toml, *, time_scale=None) -> Profile      (BUILTIN profiles)
    SimulatorServer(world, profile, *, tls, verifier=None, clock=None, host, port)
    secure_from_dev_pki(pki, passphrase) -> (TlsConfig, EnvelopeVerifier)   (lspsim.secure)
    SignedQueries(pki, passphrase)                                          (lspsim.driver)
"""

from prefetch.lspsim.clock import Clock, FakeClock, SystemClock
from prefetch.lspsim.profiles import BUILTIN, NotRegistered, Profile, get_profile, load_profile
from prefetch.lspsim.server import SimulatorServer, TlsConfig
from prefetch.lspsim.world import Pharmacy, Registration, World, WorldPatient

__all__ = [
    "BUILTIN",
    "Clock",
    "FakeClock",
    "NotRegistered",
    "Pharmacy",
    "Profile",
    "Registration",
    "SimulatorServer",
    "SystemClock",
    "TlsConfig",
    "World",
    "WorldPatient",
    "get_profile",
    "load_profile",
]
