-- Argo CD health check of phonefleet.dev/PhoneBinding (resource.customizations.health).
-- Argo CD runs it with the live object as `obj` and reads the returned status and message.
-- Kept in step with manifests/argocd/argocd-cm-patch.yaml and tested by
-- tests/unit/cli/test_argocd_health.py on sample statuses (Lua 5.1, as Argo CD's gopher-lua).
local hs = {}
local status = obj.status
if status == nil or status.phase == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the phonefleet operator to report on this binding"
  return hs
end

-- A status written for an older spec says nothing about the current one (kstatus' rule).
local generation = obj.metadata and obj.metadata.generation
if generation ~= nil and status.observedGeneration ~= nil and status.observedGeneration < generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation) ..
    " (status is of generation " .. tostring(status.observedGeneration) .. ")"
  return hs
end

local ready = nil
if status.conditions ~= nil then
  for _, condition in ipairs(status.conditions) do
    if condition.type == "Ready" then
      ready = condition
    end
  end
end

local message = status.message
if message == nil or message == "" then
  message = "PhoneBinding is " .. status.phase
end

local phase = status.phase
if phase == "Running" then
  if ready ~= nil and ready.status == "True" then
    hs.status = "Healthy"
  else
    hs.status = "Progressing"
  end
elseif phase == "Pending" or phase == "Bound" then
  hs.status = "Progressing"
elseif phase == "Conflict" then
  hs.status = "Degraded"
  if status.conflictWith ~= nil and string.find(message, status.conflictWith, 1, true) == nil then
    message = message .. " (held by " .. status.conflictWith .. ")"
  end
elseif phase == "PhoneNotFound" or phase == "Error" then
  hs.status = "Degraded"
elseif phase == "Suspended" then
  hs.status = "Suspended"
else
  hs.status = "Unknown"
  message = "Unknown phase " .. tostring(phase) .. ": " .. message
end
hs.message = message
return hs
