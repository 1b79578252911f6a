"""`Organisation`: every noun, built once over the tenancy it writes through."""

from __future__ import annotations

from ...tenancy import Tenancy
from .doctors import Doctors
from .equipment import Devices, DeviceTypes
from .nouns import Noun
from .peers import Gateways, PacsPeers, Partners
from .places import Departments, Hospitals, Unions
from .users import Users


class Organisation:
    """The service layer of the organisation; `nouns` lists those the API serves alike, by their path."""

    def __init__(self, tenancy: Tenancy) -> None:
        self.db = tenancy.db
        self.unions = Unions(tenancy)
        self.hospitals = Hospitals(tenancy)
        self.departments = Departments(tenancy)
        self.device_types = DeviceTypes(tenancy)
        self.devices = Devices(tenancy)
        self.doctors = Doctors(tenancy)
        self.partners = Partners(tenancy)
        self.pacs = PacsPeers(tenancy)
        self.gateways = Gateways(tenancy)
        self.users = Users(tenancy)

    @property
    def nouns(self) -> dict[str, Noun]:
        every: list[Noun] = [self.unions, self.hospitals, self.departments, self.device_types, self.devices,
                             self.doctors, self.users, self.partners, self.pacs, self.gateways]
        return {n.path: n for n in every}
