// The SCIM endpoint's app registration for the app-role mode (docs/app-guide.md): the app roles
// `read`, `events` and `app:write` (the scopes of scim_core/principal.py) and, optionally, their
// assignment to the line-of-business app's managed identity or service principal. Entra then puts
// the assigned roles in the `roles` claim of the tokens that app gets for this endpoint; the
// Function App checks them (SCIM_APP_JWT_ISSUER / SCIM_APP_JWT_AUDIENCE / SCIM_APP_JWKS_URL).
//
// Kept out of main.bicep for the same reason as graph-permissions.bicep: creating app
// registrations and assigning app roles are Entra changes (Application Administrator or Cloud
// Application Administrator; Privileged Role Administrator to assign roles of other apps), while
// main.bicep needs only Azure rights. Deploy it once per customer, then set appJwtAudience of
// main.bicep to the appIdUri output:
//   az deployment group create -g <rg> -f infra/app-roles.bicep \
//     -p customerName=<customer> appPrincipalId=<object id of the app's service principal> \
//     -p appRoles="['read','events']"
// Needs Bicep >= 0.36.1 and the Microsoft Graph extension declared in bicepconfig.json beside this file.

extension microsoftGraphV1

targetScope = 'resourceGroup'

@description('Customer name, as for main.bicep (names the app registration).')
param customerName string

@description('Object id of the service principal of the line-of-business app (for a managed identity: its principalId). Empty: define the roles only and assign them later.')
param appPrincipalId string = ''

@description('The roles (scopes) to assign to appPrincipalId: any of read, events, app:write.')
param appRoles array = [
  'read'
]

var uniqueName = 'scim-endpoint-${customerName}'
// Identifier URIs of single-tenant apps must be api://<appId>, api://<tenantId>/<string> or use a
// verified domain (Microsoft Learn, "Restrict identifier URI formats",
// https://learn.microsoft.com/entra/identity-platform/identifier-uri-restrictions). The app id is
// not known before the app exists, so the tenant form is used.
var appIdUri = 'api://${tenant().tenantId}/${uniqueName}'
var roleDefinitions = [
  {
    value: 'read'
    displayName: 'Read users and groups'
    description: 'GET and POST /.search on Users, Groups and the discovery endpoints of the SCIM endpoint.'
  }
  {
    value: 'events'
    displayName: 'Receive provisioning events'
    description: 'Poll the /Events feed of the SCIM endpoint (RFC 8936).'
  }
  {
    value: 'app:write'
    displayName: 'Write the app extension'
    description: 'PATCH and PUT only the attributes of urn:scimfunc:schemas:extension:app:1.0:User.'
  }
]

resource endpoint 'Microsoft.Graph/applications@v1.0' = {
  uniqueName: uniqueName
  displayName: 'SCIM endpoint (${customerName})'
  signInAudience: 'AzureADMyOrg'
  identifierUris: [
    appIdUri
  ]
  // App roles assignable to applications (application permissions), one per scope; their ids are
  // stable per customer, so a redeploy updates them rather than making new ones.
  appRoles: [for role in roleDefinitions: {
    id: guid(uniqueName, role.value)
    value: role.value
    displayName: role.displayName
    description: role.description
    allowedMemberTypes: [
      'Application'
    ]
    isEnabled: true
  }]
}

resource endpointPrincipal 'Microsoft.Graph/servicePrincipals@v1.0' = {
  appId: endpoint.appId
  // Only clients assigned a role get a token for this endpoint at all (Graph servicePrincipal
  // resource, appRoleAssignmentRequired).
  appRoleAssignmentRequired: true
}

resource assignments 'Microsoft.Graph/appRoleAssignedTo@v1.0' = [for role in (empty(appPrincipalId) ? [] : appRoles): {
  principalId: appPrincipalId
  resourceId: endpointPrincipal.id
  appRoleId: guid(uniqueName, role)
}]

@description('The audience of the app\'s tokens: set main.bicep appJwtAudience (SCIM_APP_JWT_AUDIENCE) to it.')
output appIdUri string = appIdUri
output appId string = endpoint.appId
output assignedRoles array = empty(appPrincipalId) ? [] : appRoles
