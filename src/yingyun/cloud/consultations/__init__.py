"""Remote consultations (会诊) and doctors."""
