"""Airbyte source for customer data from Okendo, LOKE, Malomo and Capillary."""
