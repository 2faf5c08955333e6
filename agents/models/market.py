"""The spot market: pools, price samples, risk analyses."""
from django.db import models
from django.db.models import Q

from agents.models.common import PRICE, _in


class RiskRecommendation(models.TextChoices):
    SAFE = "safe", "Safe"
    CAUTION = "caution", "Caution"
    AVOID = "avoid", "Avoid"


class SpotPool(models.Model):
    """A spot capacity pool: one instance type in one availability zone."""

    id = models.CharField(primary_key=True, max_length=100)  # "{instance_type}.{az}"
    instance_type = models.CharField(max_length=64)
    region = models.CharField(max_length=32)
    az = models.CharField(max_length=32)
    # Latest known price and risk, kept on the row so that a failover choice reads one small table.
    latest_price = models.DecimalField(null=True, blank=True, **PRICE)
    latest_price_at = models.DateTimeField(null=True, blank=True)
    risk_score = models.DecimalField(max_digits=5, decimal_places=4, null=True, blank=True)
    # Empty until the risk analysis has rated the pool (agents/services/risk.py is its only writer).
    risk_recommendation = models.CharField(max_length=16, blank=True, default="", choices=RiskRecommendation.choices)
    cooldown_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "spot_pools"
        ordering = ["id"]
        indexes = [models.Index(fields=["instance_type", "region"], name="pool_type_region_idx")]
        constraints = [
            models.CheckConstraint(
                condition=Q(risk_recommendation="") | _in("risk_recommendation", RiskRecommendation),
                name="pool_risk_recommendation_valid",
            )
        ]

    def __str__(self) -> str:
        return self.id


class SpotPriceSample(models.Model):
    pool = models.ForeignKey(SpotPool, on_delete=models.CASCADE, related_name="price_samples")
    price = models.DecimalField(**PRICE)
    observed_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "spot_price_samples"
        ordering = ["-observed_at"]
        constraints = [models.UniqueConstraint(fields=["pool", "observed_at"], name="spot_sample_unique")]
        indexes = [
            # Pool risk sums each pool's last 24 h from the index alone (agents/services/risk.py).
            models.Index(fields=["pool", "observed_at", "price"], name="spot_sample_window_idx"),
            # The retention job deletes by age (agents/services/retention.py).
            models.Index(fields=["observed_at"], name="spot_sample_time_idx"),
        ]


class OnDemandPriceSample(models.Model):
    instance_type = models.CharField(max_length=64)
    region = models.CharField(max_length=32)
    price = models.DecimalField(**PRICE)
    # The agent's own stand-in when the AWS Pricing API fails (v4: exactly 0.1; v3: 3 x mean spot).
    is_fallback = models.BooleanField(default=False)
    observed_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "ondemand_price_samples"
        ordering = ["-observed_at"]
        constraints = [
            models.UniqueConstraint(fields=["instance_type", "region", "observed_at"], name="ondemand_sample_unique")
        ]
        indexes = [
            models.Index(fields=["instance_type", "region", "is_fallback", "observed_at"], name="ondemand_lookup_idx"),
            models.Index(fields=["observed_at"], name="ondemand_sample_time_idx"),
        ]



class PoolRiskAnalysis(models.Model):
    pool = models.ForeignKey(SpotPool, on_delete=models.CASCADE, related_name="risk_analyses")
    analyzed_at = models.DateTimeField()
    risk_score = models.DecimalField(max_digits=5, decimal_places=4)
    volatility = models.DecimalField(max_digits=10, decimal_places=6, default=0)
    avg_price_24h = models.DecimalField(null=True, blank=True, **PRICE)
    min_price_24h = models.DecimalField(null=True, blank=True, **PRICE)
    max_price_24h = models.DecimalField(null=True, blank=True, **PRICE)
    interruption_frequency = models.DecimalField(max_digits=10, decimal_places=4, default=0)
    recommendation = models.CharField(max_length=16, choices=RiskRecommendation.choices)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "pool_risk_analysis"
        ordering = ["-analyzed_at"]
        verbose_name_plural = "pool risk analyses"
        constraints = [
            models.UniqueConstraint(fields=["pool", "analyzed_at"], name="pool_risk_unique_run"),
            models.CheckConstraint(condition=_in("recommendation", RiskRecommendation), name="pool_risk_rec_valid"),
            models.CheckConstraint(condition=Q(risk_score__gte=0, risk_score__lte=1), name="pool_risk_score_range"),
        ]
