Rails.application.routes.draw do
  root 'tasks#index'
end
