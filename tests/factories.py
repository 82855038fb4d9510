"""factory_boy factories shared by every test layer."""

import factory
from django.contrib.auth import get_user_model

from collab.services import document_create

PASSWORD = "correct-horse-battery-staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @classmethod
    def _after_postgeneration(cls, instance, create, results=None):
        if create:
            instance.save()


class DocumentFactory(factory.django.DjangoModelFactory):
    """A document made as ``document_create`` makes it: the owner is a member, and any initial
    content is the first op."""

    class Meta:
        model = "collab.Document"

    title = factory.Sequence(lambda n: f"Document {n}")
    owner = factory.SubFactory(UserFactory)
    content = ""

    @classmethod
    def _create(cls, model_class, *args, owner, title, content, **kwargs):
        return document_create(owner=owner, title=title, content=content)
