"""The base of every /api/agents/{agent_id}/... view."""
from rest_framework.views import APIView

from agents.selectors import agent_get_for_client


# A comment, not a docstring: the schema would show a base class's docstring on every operation.
# The agent is the caller's own or a 404.
class AgentApi(APIView):
    def get_agent(self, agent_id):
        return agent_get_for_client(client=self.request.user, agent_id=agent_id)
