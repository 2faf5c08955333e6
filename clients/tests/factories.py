import factory

from clients.models import Client, token_hash


class ClientFactory(factory.django.DjangoModelFactory):
    """A client whose plain token stays available as `client.token` (tests only)."""

    class Meta:
        model = Client

    name = factory.Sequence(lambda n: f"Client {n}")
    email = factory.Sequence(lambda n: f"client{n}@example.com")
    token = factory.Sequence(lambda n: f"test-token-{n}")
    token_hash = factory.LazyAttribute(lambda o: token_hash(o.token))
    token_prefix = factory.LazyAttribute(lambda o: o.token[:8])
    is_active = True

    @classmethod
    def _create(cls, model_class, *args, token=None, **kwargs):
        obj = super()._create(model_class, *args, **kwargs)
        obj.token = token
        return obj
