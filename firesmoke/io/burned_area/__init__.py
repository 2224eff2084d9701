"""Burned-area products as training targets and references: MCD64A1, MCD64monthly, VNP64A1."""
