"""REST shapes of presence: the same fields WebSocket events carry."""

from __future__ import annotations

from rest_framework import serializers

from presence.services import MAX_USERS_PER_QUERY


class PresenceUserRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()


class UserPresenceOutputSerializer(serializers.Serializer):
    user = PresenceUserRefSerializer()
    status = serializers.ChoiceField(choices=["online", "away", "busy", "offline"])
    activity = serializers.CharField(allow_null=True)
    location = serializers.CharField(allow_null=True)


class UsersPresenceOutputSerializer(serializers.Serializer):
    results = UserPresenceOutputSerializer(many=True)


class RoomMemberOutputSerializer(UserPresenceOutputSerializer):
    state = serializers.CharField(allow_null=True)


class RoomPresenceOutputSerializer(serializers.Serializer):
    room = serializers.CharField()
    members = RoomMemberOutputSerializer(many=True)


class UsersPresenceQuerySerializer(serializers.Serializer):
    ids = serializers.CharField(help_text="Comma-separated user ids, at most 100.")

    def validate_ids(self, value: str) -> list[int]:
        parts = [part.strip() for part in value.split(",") if part.strip()]
        if not parts or len(parts) > MAX_USERS_PER_QUERY:
            raise serializers.ValidationError(f"Give 1 to {MAX_USERS_PER_QUERY} user ids.")
        if not all(
            part.isascii() and part.isdigit() and len(part) < 19 and int(part) > 0 for part in parts
        ):
            raise serializers.ValidationError("User ids are positive integers.")
        return list(dict.fromkeys(int(part) for part in parts))
