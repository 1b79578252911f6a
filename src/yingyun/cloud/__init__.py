"""The cloud: patients' and doctors' pages, and (later) the internet-hospital API."""
