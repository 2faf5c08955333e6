from django.db import models

MONEY = {"max_digits": 15, "decimal_places": 4}
HOURS = {"max_digits": 10, "decimal_places": 2}


class SavingsSnapshot(models.Model):
    """One client's savings for one UTC day (docs/ARCHITECTURE.md §5); recomputing a day upserts it."""

    id = models.AutoField(primary_key=True)
    client = models.ForeignKey("clients.Client", on_delete=models.CASCADE, related_name="savings_snapshots")
    snapshot_date = models.DateField()
    total_savings = models.DecimalField(default=0, **MONEY)  # savings of this day, USD
    spot_hours = models.DecimalField(default=0, **HOURS)
    ondemand_hours = models.DecimalField(default=0, **HOURS)
    actual_cost = models.DecimalField(default=0, **MONEY)
    ondemand_cost = models.DecimalField(default=0, **MONEY)  # what the same hours would cost on-demand
    switch_count = models.PositiveIntegerField(default=0)
    average_savings_percent = models.DecimalField(max_digits=5, decimal_places=2, default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "savings_snapshots"
        ordering = ["-snapshot_date"]
        constraints = [models.UniqueConstraint(fields=["client", "snapshot_date"], name="savings_one_per_day")]

    def __str__(self) -> str:
        return f"{self.client_id} {self.snapshot_date}: {self.total_savings}"
