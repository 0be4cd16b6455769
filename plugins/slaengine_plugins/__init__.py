"""The plugins bundled with slaengine: ticket-system adapters, notifiers, penalty schemes.

Each registers through the ``slaengine`` entry-point group, exactly as a
third-party plugin does.
"""
