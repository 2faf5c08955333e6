"""Output serializers of the savings read (docs/API.md §2): money as JSON numbers."""
from rest_framework import serializers

from spotbackend.api import MoneyField


class MonthSavingsSerializer(serializers.Serializer):
    month = serializers.CharField(help_text="YYYY-MM")
    savings = MoneyField()


class ClientSavingsOutput(serializers.Serializer):
    total_savings = MoneyField()
    monthly_savings = MoneyField()
    savings_by_month = MonthSavingsSerializer(many=True, help_text="Newest month first.")
    average_savings_percent = serializers.FloatField()
