"""A third-party plugin: tells the rules which customers are strategic."""

from slaengine.hookspecs import hookimpl


class StrategicCustomers:
    """Adds ``facts.strategic`` from a configured list of customers."""

    def __init__(self) -> None:
        self.customers: set[str] = {"huaxia-bank"}

    @hookimpl
    def slaengine_configure(self, config):
        if "customers" in config:
            self.customers = set(config["customers"])

    @hookimpl
    def slaengine_facts(self, ticket):
        return {"strategic": ticket.customer in self.customers}
