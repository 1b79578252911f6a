"""The hospital side: RIS API, DICOM receiver, spool and forwarding."""
